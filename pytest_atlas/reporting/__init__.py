"""Reporting of every check pytest-atlas runs (contract checks, gates, reward assertions): the text
a failure shows, the terminal sections, the ``$GITHUB_STEP_SUMMARY`` Markdown and the JSON report.

Rendering only: nothing here evaluates a check, touches a database or imports pytest. The plugin's
reporter (``pytest_atlas.plugin._reporter``) collects the result payloads and hands them here; the
exit statuses are in :mod:`pytest_atlas._outcome`; every table is drawn by
:mod:`pytest_atlas._table`.

* :mod:`._gates`: the gate table, :func:`render_failure`, the ``atlas gates`` section;
* :mod:`._contracts`: the ``atlas contract`` section;
* :mod:`._markdown`: :func:`render_markdown` (step summary);
* :mod:`._json`: :func:`build_report`, :func:`write_report`;
* :mod:`._lines`: what the sections share (count line, colours, problems as lines).
"""

from __future__ import annotations

from pytest_atlas._properties import RESULT_PROPERTY, parse_result_property, result_property
from pytest_atlas.reporting._contracts import contract_section
from pytest_atlas.reporting._gates import HEADERS, gate_section, gate_table, render_failure
from pytest_atlas.reporting._json import REPORT_FORMAT, build_report, write_report
from pytest_atlas.reporting._markdown import render_markdown

__all__ = [
    "HEADERS",
    "REPORT_FORMAT",
    "RESULT_PROPERTY",
    "build_report",
    "contract_section",
    "gate_section",
    "gate_table",
    "parse_result_property",
    "render_failure",
    "render_markdown",
    "result_property",
    "write_report",
]
