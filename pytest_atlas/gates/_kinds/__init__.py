"""The table of gate kinds: the one place that says which kinds exist.

Each kind is one module here holding everything about it:

* its **options**: a frozen dataclass whose fields are the option names the kind accepts (besides
  the selection and the options every gate has), with a ``build`` classmethod that checks them
  through :mod:`pytest_atlas._arguments` and a ``describe`` method for the report;
* its **query**: read-only SQL composed from :mod:`pytest_atlas.gates._sql` (or the reward series
  of :mod:`pytest_atlas.gates._series`);
* its **verdict**: a pure function from what the query read to one
  :class:`~pytest_atlas.gates.KeyResult` per learning key (``*_rows``; the reward assertions call
  it on scores that never were in a database);
* ``KIND = GateKind(name, Options, Options.build, evaluate, scored=...)`` tying them together,
  where ``evaluate(conn, spec, options, context)`` runs the query and the verdict.

To add a kind: write ``_kinds/<name>.py`` after the model of ``review.py`` (the smallest), add its
``KIND`` to :data:`KINDS` below, document its options in ``docs/gates.md``, and test it through a
declaration (``GateSpec.build``), a database (``evaluate``) and a run (``pytester`` with
``--atlas-gates``). Nothing else switches on the kind: declarations, evaluation, the plugin's items,
the reports and baseline files all go through this table. A kind needs no numpy or scipy at import
time (reach statistics through the lazy :mod:`pytest_atlas.stats` facade): gate declarations are
checked on every run before anything heavy loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_atlas.gates._kind import GateKind
from pytest_atlas.gates._kinds import drift, execution_modes, regression, review, threshold

__all__ = ["KINDS"]

#: every gate kind, by the name ``kind = "..."`` gives it (in the order the docs list them)
KINDS: Mapping[str, GateKind[Any]] = {
    kind.name: kind
    for kind in (
        threshold.KIND,
        regression.KIND,
        drift.KIND,
        review.KIND,
        execution_modes.KIND,
    )
}
