"""The ``fields`` gate: does the candidate window still write the JSON fields the baseline wrote, with
the same types?

Options: ``column`` (a JSON column, default ``sessions.metadata``), ``baseline`` (a selection of
baseline sessions in the same database; without it the gate compares with the census stored in
the ``--atlas-baseline`` file), ``min_presence``, ``max_presence_drop``, ``min_effect``,
``new_paths``, ``exclude``, ``exclude_volatile``, ``alpha``, ``power``. Query: the field census of
the selected sessions' column (and of the baseline's), read in one streamed read-only query.
Verdict (:func:`~pytest_atlas.gates._fields.field_rows`): one row per JSON path; a path present in at
least ``min_presence`` of the baseline fails when its share dropped by more than
``max_presence_drop`` beyond noise; any baseline path fails when the share of its rows holding the
baseline's JSON types dropped beyond noise (a type change); with ``new_paths`` a path the baseline
never had fails. Every learning key of the selection is pooled (``by_key`` does not split it). A
baseline selection that shares sessions with the candidate fails the gate uncompared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_atlas._arguments import check_bool, check_choice, check_number, check_probability
from pytest_atlas._outcome import Outcome
from pytest_atlas.errors import GateError, InvalidArgument
from pytest_atlas.gates._fields import FieldOptions, PathCensus, fetch_census, field_columns, field_rows
from pytest_atlas.gates._kind import Context, Evaluation, GateKind, baseline_selection, find_baseline, no_baseline
from pytest_atlas.gates._result import OVERLAP, KeyResult
from pytest_atlas.gates._selection import Selection

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._spec import GateSpec

__all__ = ["KIND", "FieldsOptions"]


@dataclass(frozen=True, kw_only=True)
class FieldsOptions:
    column: str = "sessions.metadata"
    baseline: Selection | None = None
    min_presence: float = 0.5
    max_presence_drop: float = 0.05
    min_effect: float | None = 0.25
    new_paths: bool = False
    exclude: tuple[str, ...] = ()
    exclude_volatile: bool = True
    alpha: float = 0.05
    power: float = 0.8

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> FieldsOptions:
        values: dict[str, Any] = {}
        if "column" in options:
            values["column"] = check_choice(
                "column", options["column"], tuple(field_columns()), what="a JSON column a fields gate reads"
            )
        if "baseline" in options:
            values["baseline"] = baseline_selection(options["baseline"])
        if "min_presence" in options:
            values["min_presence"] = check_probability("min_presence", options["min_presence"], low_open=True)
        if "max_presence_drop" in options:
            values["max_presence_drop"] = check_probability("max_presence_drop", options["max_presence_drop"])
        if "min_effect" in options:
            raw_effect = options["min_effect"]
            values["min_effect"] = (
                None
                if raw_effect is None or raw_effect is False
                else check_probability("min_effect", raw_effect, low_open=True)
            )
        effect = values.get("min_effect", 0.25)
        if effect is not None and effect <= values.get("max_presence_drop", 0.05):
            raise InvalidArgument(
                "min_effect must be larger than max_presence_drop",
                hint="min_effect is the drop in a share that must be detectable, max_presence_drop the drop accepted",
            )
        for name in ("new_paths", "exclude_volatile"):
            if name in options:
                values[name] = check_bool(name, options[name])
        if "exclude" in options:
            raw_paths = options["exclude"]
            paths = [raw_paths] if isinstance(raw_paths, str) else raw_paths
            if not isinstance(paths, list | tuple) or not all(
                isinstance(p, str) and p.startswith("$") and len(p) > 1 for p in paths
            ):
                raise InvalidArgument(
                    f"exclude must be a JSON path or a list of them, got {raw_paths!r}",
                    hint='paths as the fields gate names them, e.g. exclude = ["$.token_usage", "$.steps[*].output"]',
                )
            values["exclude"] = tuple(paths)
        if "alpha" in options:
            values["alpha"] = check_number("alpha", options["alpha"], low=0.0, high=0.5, low_open=True, example=0.05)
        if "power" in options:
            values["power"] = check_number("power", options["power"], low=0.0, high=0.999, low_open=True, example=0.8)
        return cls(**values)

    def comparison(self) -> FieldOptions:
        return FieldOptions(
            min_presence=self.min_presence,
            max_presence_drop=self.max_presence_drop,
            min_effect=self.min_effect,
            alpha=self.alpha,
            power=self.power,
            new_paths=self.new_paths,
            exclude=self.exclude,
            exclude_volatile=self.exclude_volatile,
        )

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.column,
            "alpha": self.alpha,
            "power": self.power,
            "min_presence": self.min_presence,
            "max_presence_drop": self.max_presence_drop,
            "min_effect": self.min_effect,
            "new_paths": self.new_paths,
            "exclude": list(self.exclude),
            "exclude_volatile": self.exclude_volatile,
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.describe()
        return out


def evaluate(conn: psycopg.Connection[Any], spec: GateSpec, options: FieldsOptions, context: Context) -> Evaluation:
    from_selection = options.baseline is not None and context.census is None
    census = fetch_census(conn, spec.selection, options.column, with_ids=from_selection)
    baseline, label, notes = find_baseline(
        spec.name,
        context.census,
        context.baseline_label,
        options.baseline,
        lambda selection: fetch_census(conn, selection, options.column, with_ids=True),
        context.load_census,
    )
    shared = _shared(census, baseline)
    census.sessions = None  # read for the overlap alone: a baseline file written from it keeps none
    if baseline is not None:
        baseline.sessions = None
    if baseline is None:
        if not context.record:
            raise no_baseline(spec)
        recorded = KeyResult(
            "(every path)",
            census.n,
            "paths",
            float(len(census.paths)),
            "-",
            "recorded",
            Outcome.PASS,
            f"no baseline yet: the census of {len(census.paths)} path(s) is recorded for the baseline file",
        )
        rows = [recorded] if census.n else []
        return Evaluation(rows, (*notes, "no baseline: recording only"), census=census)
    if baseline.column != options.column:
        raise GateError(
            f"the baseline of fields gate {spec.name!r} is a census of {baseline.column}, the gate reads "
            f"{options.column}",
            hint="save the baseline again with --atlas-save-baseline after changing column",
        )
    if baseline.n == 0:
        raise GateError(
            f"the baseline of fields gate {spec.name!r} is empty: {label} holds no session",
            hint="fix the baseline selection (a typo in a metadata value matches nothing) or save the baseline "
            "again with --atlas-save-baseline from a run you trust",
        )
    if not census.n:
        return Evaluation([], notes, census=census)
    if shared is not None:
        return Evaluation([shared], notes, census=census)
    rows = field_rows(census, baseline, options.comparison())
    if not rows:
        raise GateError(
            f"fields gate {spec.name!r} has nothing to compare: no path of {label} is left after exclude "
            "and the volatile paths",
            hint="check exclude and the baseline selection",
        )
    if not any(row.detail.get("tested") for row in rows) and not any(r.outcome is Outcome.FAIL for r in rows):
        # every row only shown: a pass would be a verdict on no test at all
        raise GateError(
            f"fields gate {spec.name!r} tested nothing: no path of {label} left after exclude and the "
            f"volatile paths is present in at least min_presence ({options.min_presence:g}) of its "
            f"{baseline.n} session(s), and no path took a new type",
            hint="lower min_presence, narrow exclude, or check the baseline selection",
        )
    return Evaluation(rows, notes, census=census)


def _shared(census: PathCensus, baseline: PathCensus | None) -> KeyResult | None:
    """The failing row of a candidate that shares sessions with its baseline selection (a window
    compared with itself shows no drop), or None when they share none or a side has no ids."""
    if baseline is None or census.sessions is None or baseline.sessions is None:
        return None
    import numpy as np

    candidate = np.unique(np.frombuffer(census.sessions, dtype=np.int64))
    base = np.unique(np.frombuffer(baseline.sessions, dtype=np.int64))
    both = np.intersect1d(candidate, base)
    if not len(both):
        return None
    return KeyResult(
        "(every path)",
        census.n,
        OVERLAP,
        None,
        "-",
        "-",
        Outcome.FAIL,
        f"{len(both)} session(s) are in both the candidate ({len(candidate)} session(s)) and the baseline "
        f"({len(base)} session(s)): a window compared with itself shows no drop; make the two selections "
        'disjoint (e.g. metadata = { run = "candidate" } for the gate and baseline = { metadata = { run = '
        '"main" } }, or a baseline until no later than the gate\'s since)',
        worst=tuple(int(session) for session in both[:5]),
        detail={"shared": len(both), "n_baseline": baseline.n},
    )


KIND = GateKind("fields", FieldsOptions, FieldsOptions.build, evaluate, keyed=False)
