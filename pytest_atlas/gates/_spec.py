"""Gate declarations: what a gate checks and how strictly, checked up front.

A declaration is loose options (a TOML table, marker keywords, an assertion's arguments):
``kind``, the selection (:class:`~pytest_atlas.gates.Selection`), the options every gate has
(``by_key``, ``allow_inconclusive``, ``description``) and the kind's own options, which the kind's
module checks (see :mod:`pytest_atlas.gates._kinds`). Light: no numpy, no scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_atlas._arguments import check_bool, check_choice, check_string, unknown_names
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates._kinds import KINDS
from pytest_atlas.gates._selection import Selection

__all__ = ["COMMON_OPTIONS", "KINDS", "GateSpec"]

#: the options every gate accepts besides the selection and its kind's own
COMMON_OPTIONS = frozenset({"kind", "name", "by_key", "allow_inconclusive", "description"})
_SELECTION = frozenset(Selection.__dataclass_fields__)


@dataclass(frozen=True)
class GateSpec:
    """One gate. Build it with :meth:`build` (checks every option and names the wrong one).

    ``options`` holds the kind's own options (``spec.options.threshold``, ``spec.options.window``):
    an instance of the options class of the kind's module.
    """

    name: str
    kind: str
    options: Any
    selection: Selection = field(default_factory=Selection)
    by_key: bool = True
    allow_inconclusive: bool = False
    description: str = ""

    @classmethod
    def build(cls, name: str, options: Mapping[str, Any]) -> GateSpec:
        """A gate from loose options (a TOML table, marker keywords). Raises InvalidArgument."""
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "[]:/\\\n"):
            raise InvalidArgument(
                f"gate name {name!r} is not usable",
                hint="name gates with letters, digits, '-', '_' and '.', e.g. 'reward-floor'",
            )
        given = options.get("kind")
        try:
            kind_name = check_choice("kind", given, tuple(KINDS))  # (any case, spaces around)
        except InvalidArgument as refused:
            error = refused
            if isinstance(given, str) and given.strip():  # a misspelt name: the shape of every other
                error = unknown_names("kind", [given], KINDS, also='for example kind = "threshold"')
            raise InvalidArgument(f"gate {name!r}: {error.problem}", hint=error.hint) from None
        kind = KINDS[kind_name]
        allowed = kind.option_names | COMMON_OPTIONS | _SELECTION
        unknown = sorted(set(options) - allowed)
        if unknown:
            error = unknown_names("option", unknown, allowed - {"kind", "name"}, of=f" of a {kind_name} gate")
            raise InvalidArgument(f"gate {name!r} ({kind_name}): {error.problem}", hint=error.hint)
        try:
            selection = Selection.build(**{k: v for k, v in options.items() if k in _SELECTION})
            if selection.max_uncertainty is not None and not kind.scored:
                scored = " and ".join(k.name for k in KINDS.values() if k.scored)
                raise InvalidArgument(
                    f"max_uncertainty applies to {scored} gates, not {kind_name}",
                    hint="a drift gate recomputes Atlas's own check, which uses every session",
                )
            built = kind.build({k: v for k, v in options.items() if k in kind.option_names})
            built = _inherit_uncertainty(kind.scored, selection, built)
            _check_baseline(selection, getattr(built, "baseline", None))
            return cls(
                name,
                kind_name,
                built,
                selection,
                by_key=check_bool("by_key", options.get("by_key", True)),
                allow_inconclusive=check_bool("allow_inconclusive", options.get("allow_inconclusive", False)),
                description=check_string(
                    "description",
                    options.get("description", ""),
                    example="the reward floor agreed with the product team",
                    empty=True,
                ),
            )
        except InvalidArgument as exc:
            raise InvalidArgument(f"gate {name!r}: {exc.problem}", hint=exc.hint) from None

    def describe(self) -> dict[str, Any]:
        """The gate's settings, JSON-ready (for the report)."""
        return {"kind": self.kind, **self.selection.describe(), **self.options.describe()}


def _inherit_uncertainty(scored: bool, selection: Selection, built: Any) -> Any:
    """The gate's ``max_uncertainty`` applies to both sides of a comparison: a scored kind's
    baseline selection that sets no bound of its own takes the gate's, so that sure scores are
    compared with sure scores (a baseline file holds the series as the run that saved it read
    them, its bound applied then)."""
    baseline = getattr(built, "baseline", None)
    if not scored or not isinstance(baseline, Selection) or selection.max_uncertainty is None:
        return built
    if baseline.max_uncertainty is not None:
        return built
    return replace(built, baseline=replace(baseline, max_uncertainty=selection.max_uncertainty))


def _check_baseline(selection: Selection, baseline: object) -> None:
    """A baseline selection declared with the gate's own filters reads the candidate's sessions:
    the comparison of a window with itself shows no change whatever the data (sessions shared at
    run time are the kind's to find)."""
    if isinstance(baseline, Selection) and baseline.filters() == selection.filters():
        raise InvalidArgument(
            "baseline selects the same sessions as the gate's own selection "
            f"({selection.describe() or 'every session'}): a window compared with itself shows no change",
            hint="give the baseline a filter that picks the run you compare with, and the gate one that picks "
            'the candidate, e.g. metadata = { run = "candidate" } and baseline = { metadata = { run = "main" } }',
        )
