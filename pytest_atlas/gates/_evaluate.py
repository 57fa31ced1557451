"""Evaluating a gate against a database: the kind's query and verdict (from the table of kinds),
then one :class:`~pytest_atlas.gates.GateResult`. Nothing here knows a kind by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import psycopg

from pytest_atlas._dsn import Dsn, hide_password
from pytest_atlas.db import read_again
from pytest_atlas.gates._fields import PathCensus
from pytest_atlas.gates._kind import Context, Evaluation
from pytest_atlas.gates._kinds import KINDS
from pytest_atlas.gates._named import unread_names
from pytest_atlas.gates._result import GateResult, KeyResult
from pytest_atlas.gates._series import Series
from pytest_atlas.gates._spec import GateSpec
from pytest_atlas.gates._sql import connection

__all__ = ["evaluate", "gate_result"]


def evaluate(
    spec: GateSpec,
    source: psycopg.Connection[Any] | str | Dsn,
    *,
    baseline: Mapping[str, Series] | None = None,
    record: bool = False,
    baseline_label: str = "the baseline given",
    load_baseline: Callable[[str], tuple[Mapping[str, Series], str] | None] | None = None,
    census: PathCensus | None = None,
    load_census: Callable[[str], tuple[PathCensus, str] | None] | None = None,
    charts: bool = True,
) -> GateResult:
    """Evaluate one gate against a database (a connection or a DSN).

    Regression gates compare with ``baseline`` (series by learning key, e.g. read from a baseline
    file), else with the baseline selection the spec declares, else with what ``load_baseline``
    returns for the gate's name. With ``record`` true a regression gate that has no baseline records
    its series and passes (that is how ``--atlas-save-baseline`` runs work). Raises
    :class:`~pytest_atlas.errors.GateError` when the database cannot be read, and when a regression
    gate's baseline holds no scored session (``baseline_label`` says where that baseline came from).
    A learning key or task the spec names that the gate read no usable session of is a failing
    row naming it. A fields gate compares with ``census`` (a baseline field census), else its baseline selection,
    else what ``load_census`` returns; with ``record`` and none it records its census and passes.
    With ``charts`` false the result's ``chart`` is left empty and the query only a chart reads (the
    newest scores of each key, a second pass over the selection) is not run: for a caller that
    writes no report drawing it.
    """
    source = hide_password(source)  # frames show a DSN redacted
    kind = KINDS[spec.kind]
    context = Context(baseline, baseline_label, load_baseline, record, census, load_census, charts)

    def read() -> GateResult:
        with connection(source) as conn:
            found = kind.evaluate(conn, spec, spec.options, context)
            # every learning key and task the gate names must have evidence, not only some of them
            unread = unread_names(conn, spec, kind, found.rows)
            return gate_result(spec, replace(found, rows=[*found.rows, *unread]) if unread else found)

    # a read the server cut (a restart, an administrator: a GateError marked transient) is read again
    return read_again(source, read)


def gate_result(spec: GateSpec, found: Evaluation | Sequence[KeyResult], notes: Sequence[str] = ()) -> GateResult:
    """The result of ``spec`` from what its kind found (or from rows computed elsewhere)."""
    if not isinstance(found, Evaluation):
        found = Evaluation(list(found), tuple(notes))
    selected = spec.selection.describe()
    message = (
        ""
        if found.rows
        else "the gate's selection matched no sessions: "
        + (
            str(selected)
            if selected
            else "it has no filter: the sessions table holds no session, or only ones every gate leaves out "
            "(quarantined ones, unless include_quarantined = true; for a drift gate, those without reward_stats)"
        )
    )
    return GateResult(
        spec.name,
        spec.kind,
        tuple(found.rows),
        message=message,
        selection=spec.describe(),
        allow_inconclusive=spec.allow_inconclusive,
        notes=tuple(found.notes),
        series=found.series,
        chart=found.chart,
        census=found.census,
    )
