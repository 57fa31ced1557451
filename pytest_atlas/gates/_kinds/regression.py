"""The ``regression`` gate: did each learning key's mean reward drop against a baseline, beyond noise?

Options: ``baseline`` (a selection of baseline sessions in the same database; without it the
gate compares with the ``--atlas-baseline`` file), ``tolerance``, ``min_effect``, ``paired``,
``digits``, ``allow_new_keys`` and the statistical ones. Query: the reward series of the selected
sessions and, with a baseline selection, of the baseline's. Verdict: a one-sided test per key
(paired by task when both windows ran the same tasks), Holm-corrected across keys. An empty
baseline is an error; a key the baseline lacks fails unless ``allow_new_keys``; a key whose baseline
selection shares sessions with the candidate fails uncompared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytest_atlas import stats
from pytest_atlas._arguments import check_bool, check_integer, check_number
from pytest_atlas._outcome import Outcome
from pytest_atlas.errors import GateError, InvalidArgument
from pytest_atlas.gates._kind import (
    Context,
    Evaluation,
    GateKind,
    Statistics,
    baseline_selection,
    find_baseline,
    interval,
    missing_note,
    no_baseline,
)
from pytest_atlas.gates._result import NEW_KEY, OVERLAP, KeyResult
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._series import CHART_POINTS, Series, fetch_series, reward_chart, series_with_timeline

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._spec import GateSpec
    from pytest_atlas.stats import Comparison

__all__ = ["KIND", "RegressionOptions", "regression_rows"]


@dataclass(frozen=True, kw_only=True)
class RegressionOptions(Statistics):
    baseline: Selection | None = None
    tolerance: float = 0.0
    min_effect: float | None = 0.05
    paired: bool | None = None
    digits: int = 4
    allow_new_keys: bool = False

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> RegressionOptions:
        values: dict[str, Any] = Statistics.check(options)
        if "baseline" in options:
            values["baseline"] = baseline_selection(options["baseline"])
        if "tolerance" in options:
            values["tolerance"] = check_number("tolerance", options["tolerance"], low=0.0, high=1.0)
        if "min_effect" in options:
            raw_effect = options["min_effect"]
            values["min_effect"] = (
                None
                if raw_effect is None or raw_effect is False
                else check_number("min_effect", raw_effect, low=0.0, high=1.0, low_open=True, example=0.05)
            )
        min_effect = values.get("min_effect", 0.05)
        if min_effect is not None and min_effect <= values.get("tolerance", 0.0):
            raise InvalidArgument(
                "min_effect must be larger than tolerance",
                hint="min_effect is the drop that must be detectable, tolerance the drop that is accepted",
            )
        if "paired" in options:
            raw_paired = options["paired"]
            values["paired"] = None if raw_paired is None or raw_paired == "auto" else check_bool("paired", raw_paired)
        if "digits" in options:
            values["digits"] = check_integer("digits", options["digits"], low=0, high=12, example=4)
        if "allow_new_keys" in options:
            values["allow_new_keys"] = check_bool("allow_new_keys", options["allow_new_keys"])
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.statistics(),
            "tolerance": self.tolerance,
            "min_effect": self.min_effect,
            "paired": self.paired,
            "allow_new_keys": self.allow_new_keys,
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline.describe()
        return out


def evaluate(conn: psycopg.Connection[Any], spec: GateSpec, options: RegressionOptions, context: Context) -> Evaluation:
    series, timeline = series_with_timeline(
        conn,
        spec.selection,
        by_key=spec.by_key,
        digits=options.digits,
        points=CHART_POINTS if context.charts else 0,
        with_ids=options.baseline is not None and context.baseline is None,
    )
    baseline, label, notes = find_baseline(
        spec.name,
        context.baseline,
        context.baseline_label,
        options.baseline,
        lambda selection: fetch_series(conn, selection, by_key=spec.by_key, digits=options.digits, with_ids=True),
        context.load_baseline,
    )
    if baseline is None:
        if not context.record:
            raise no_baseline(spec)
        rows = [
            KeyResult(
                key,
                s.n,
                "mean",
                s.sample.mean if s.n else None,
                "-",
                "recorded",
                Outcome.PASS,
                "no baseline yet: series recorded for the baseline file",
                missing=s.missing,
            )
            for key, s in sorted(series.items())
        ]
        return Evaluation(rows, (*notes, "no baseline: recording only"), _without_ids(series))
    # the bound the baseline was read with: a baseline selection's (the gate's unless it sets its
    # own); a baseline given or read from a file was read by another run, with that run's bound
    bound = options.baseline.max_uncertainty if options.baseline is not None and context.baseline is None else None
    _check_baseline(spec, baseline, label, bound)
    rows = regression_rows(series, baseline, spec, baseline_bound=bound) if series else []
    chart = (
        reward_chart(
            conn,
            spec.selection,
            series,
            by_key=spec.by_key,
            baseline=baseline,
            tolerance=options.tolerance,
            timeline=timeline,
        )
        if rows and context.charts
        else {}
    )
    return Evaluation(rows, notes, _without_ids(series), chart)


def _without_ids(series: Mapping[str, Series]) -> dict[str, Series]:
    """The series without their session ids, read for the overlap alone: a result (and a baseline
    file written from it) keeps none."""
    return {key: replace(s, ids=None) for key, s in series.items()}


def _shared(candidate: Mapping[str, Series], baseline: Mapping[str, Series]) -> dict[str, Any]:
    """Per learning key, the ids of the scored sessions in both windows (keys sharing none left out):
    only series read from the database know their sessions (a baseline file's do not)."""
    import numpy as np

    out: dict[str, Any] = {}
    for key, cand in candidate.items():
        base = baseline.get(key)
        if base is None or cand.ids is None or base.ids is None:
            continue
        both = np.intersect1d(cand.ids, base.ids)
        if len(both):
            out[key] = both
    return out


#: how to fix a side whose sessions ``max_uncertainty`` left out
_UNSURE_HINT = (
    "raise max_uncertainty if it is stricter than the judges can be, or check the uncertainty the harness "
    "records (reward_stats.uncertainty_mean, the judges' mean uncertainty in 0..1)"
)


def _left_out(side: str, series: Series | Sequence[Series], bound: float | None, *, of_key: bool) -> str:
    """What ``max_uncertainty`` left out of one side that holds no scored session: "all N <side>
    session(s) were left out by max_uncertainty=X" (and how many more had no usable score)."""
    parts = [series] if isinstance(series, Series) else list(series)
    uncertain = sum(s.uncertain for s in parts)
    missing = sum(s.missing for s in parts)
    of = " of this learning key" if of_key else ""
    by = (
        f"max_uncertainty={bound:g}"
        if bound is not None
        else "max_uncertainty (the bound of the run that read the baseline)"
    )
    if missing:
        return (
            f"none of the {uncertain + missing} {side} session(s){of} has a usable score: {uncertain} were left "
            f"out by {by} and {missing} have no usable score"
        )
    return f"all {uncertain} {side} session(s){of} were left out by {by} (their judges were less sure than that)"


def _check_baseline(spec: GateSpec, baseline: Mapping[str, Series], where: str, bound: float | None = None) -> None:
    """An empty baseline proves nothing: an error, whatever ``allow_inconclusive`` says. One that
    ``max_uncertainty`` emptied says so (how many, the bound, how to fix)."""
    if not any(series.n for series in baseline.values()):
        if any(series.uncertain for series in baseline.values()):
            raise GateError(
                f"the baseline of regression gate {spec.name!r} is empty: {where} holds no usable session: "
                + _left_out("baseline", tuple(baseline.values()), bound, of_key=False),
                hint=_UNSURE_HINT
                + " (a baseline selection uses the gate's max_uncertainty unless it sets its own; a baseline "
                "file holds what the run that saved it kept: save it again)",
            )
        missing = sum(series.missing for series in baseline.values())
        held = f" ({missing} session(s) without a usable score)" if missing else ""
        raise GateError(
            f"the baseline of regression gate {spec.name!r} is empty: {where} holds no scored session{held}",
            hint="fix the baseline selection (a typo in a metadata value matches nothing) or save the baseline "
            "again with --atlas-save-baseline from a run you trust",
        )


def _pairs(base: Series, cand: Series) -> tuple[list[float], list[float]] | None:
    if base.tasks is None or cand.tasks is None or len(cand.tasks) < 2:
        return None
    if set(base.tasks) != set(cand.tasks):
        return None
    tasks = sorted(cand.tasks)
    return [base.tasks[t][0] for t in tasks], [cand.tasks[t][0] for t in tasks]


def regression_rows(
    candidate: Mapping[str, Series],
    baseline: Mapping[str, Series],
    spec: GateSpec,
    *,
    baseline_bound: float | None = None,
) -> list[KeyResult]:
    """Did each key's mean reward drop against the baseline? Paired by task when both windows ran
    the same tasks (``paired`` unset) or when asked (True). Holm across keys. A key whose two
    series share sessions (both read with ``with_ids``) fails uncompared: a window compared with
    itself shows no drop. A key whose sessions on either side ``max_uncertainty`` left out fails
    saying so (never a new key, never inconclusive); ``baseline_bound`` is the bound the baseline
    was read with, when known (a baseline selection's)."""
    options: RegressionOptions = spec.options
    shared = _shared(candidate, baseline)
    keys = sorted(set(candidate) | set(baseline))
    compared: list[tuple[str, Comparison]] = []
    rows: dict[str, KeyResult] = {}
    for key in keys:
        cand, base = candidate.get(key), baseline.get(key)
        if base is not None and base.n == 0 and base.uncertain:
            # the baseline had sessions of this key: not a new key, its evidence was left out
            rows[key] = _unsure(key, "baseline", base, baseline_bound, cand, options)
            continue
        if base is None or base.n == 0:
            rows[key] = _new_key(key, cand, base, options)
            continue
        if cand is not None and cand.n == 0 and cand.uncertain:
            rows[key] = _unsure(key, "candidate", cand, spec.selection.max_uncertainty, base, options)
            continue
        if cand is None or cand.n == 0:
            # the baseline has scores for this key, the candidate none: never inconclusive
            held = f"{cand.missing} candidate session(s) without a usable score" if cand else "no candidate session"
            rows[key] = KeyResult(
                key,
                0,
                "diff",
                None,
                "-",
                _tolerated(options),
                Outcome.FAIL,
                f"{held} for this learning key, which has {base.n} scored baseline session(s): the candidate "
                "stopped producing it (narrow the gate's learning_key if that is intended)",
                worst=(),
                missing=cand.missing if cand else 0,
            )
            continue
        both = shared.get(key)
        if both is not None:
            rows[key] = _overlap(key, cand, base, both, options)
            continue
        pairs = _pairs(base, cand) if options.paired is not False else None
        test = {**options.test_options(), "tolerance": options.tolerance, "min_effect": options.min_effect}
        if pairs is not None:
            result = stats.compare_paired(pairs[0], pairs[1], **test)
        elif options.paired:
            rows[key] = KeyResult(
                key,
                cand.n,
                "diff",
                None,
                "-",
                _tolerated(options),
                Outcome.INCONCLUSIVE,
                "paired = true, but the two windows did not run the same tasks "
                "(or ran too many distinct tasks to pair)",
                worst=tuple(s for s, _ in cand.worst),
                missing=cand.missing,
            )
            continue
        else:
            result = stats.compare(base.sample, cand.sample, **test)
        compared.append((key, result))
    for key, result in zip([k for k, _ in compared], stats.holm_adjust([r for _, r in compared]), strict=True):
        cand = candidate[key]
        rows[key] = KeyResult(
            learning_key=key,
            n=cand.n,
            statistic="diff",
            value=result.difference,
            bound=interval(result.lower, result.upper),
            threshold=_tolerated(options),
            outcome=result.outcome,
            reason=result.reason + missing_note(cand),
            worst=tuple(session for session, _ in cand.worst),
            missing=cand.missing,
            p_value=result.p_value,
            p_adjusted=result.p_adjusted,
            detail={
                "method": result.method,
                "paired": result.paired,
                "n_baseline": result.n_baseline,
                "baseline_mean": result.baseline_mean,
                "candidate_mean": result.candidate_mean,
                "lower": result.lower,
                "upper": result.upper,
                "alpha": result.alpha,
                "drop_detectable": result.drop_detectable,
                "min_effect": result.min_effect,
                "uncertainty_mean": cand.uncertainty_mean,
                "uncertain": cand.uncertain,
            },
        )
    return [rows[key] for key in keys]


def _overlap(key: str, cand: Series, base: Series, both: Any, options: RegressionOptions) -> KeyResult:
    """A key whose candidate and baseline share sessions: no evidence either way, never inconclusive."""
    return KeyResult(
        key,
        cand.n,
        OVERLAP,
        None,
        "-",
        _tolerated(options),
        Outcome.FAIL,
        f"{len(both)} session(s) are in both the candidate ({cand.n} scored) and the baseline ({base.n} scored) "
        "of this learning key: a window compared with itself shows no drop; make the two selections disjoint "
        '(e.g. metadata = { run = "candidate" } for the gate and baseline = { metadata = { run = "main" } }, '
        "or a baseline until no later than the gate's since)",
        worst=tuple(int(session) for session in both[:5]),
        missing=cand.missing,
        detail={"shared": len(both), "n_baseline": base.n},
    )


def _unsure(
    key: str, side: str, empty: Series, bound: float | None, other: Series | None, options: RegressionOptions
) -> KeyResult:
    """A key one side of which holds sessions, none scored surely enough for ``max_uncertainty``:
    no evidence, so it fails (``allow_new_keys`` and ``allow_inconclusive`` do not cover it)."""
    cand = other if side == "baseline" else empty
    base = empty if side == "baseline" else other
    other_side = "candidate" if side == "baseline" else "baseline"
    against = f"the {other_side}'s {other.n} scored session(s)" if other is not None else f"the {other_side}"
    return KeyResult(
        key,
        cand.n if cand else 0,
        "diff",
        None,
        "-",
        _tolerated(options),
        Outcome.FAIL,
        f"{_left_out(side, empty, bound, of_key=True)}: nothing to compare with {against}; {_UNSURE_HINT}",
        worst=tuple(s for s, _ in (cand.worst if cand else ())),
        missing=cand.missing if cand else 0,
        detail={
            "uncertain": cand.uncertain if cand else 0,
            "uncertain_baseline": base.uncertain if base else 0,
            "n_baseline": base.n if base else 0,
            "max_uncertainty": bound,
        },
    )


def _tolerated(options: RegressionOptions) -> str:
    return f"drop <= {options.tolerance:g}"


def _new_key(key: str, cand: Series | None, base: Series | None, options: RegressionOptions) -> KeyResult:
    """A key the baseline has no scored session for: nothing to compare with. It fails unless the
    gate says ``allow_new_keys = true``, and then counts as accepted, never as a comparison."""
    assert cand is not None or base is not None
    had = f" (the baseline has {base.missing} session(s) without a usable score)" if base and base.missing else ""
    reason = f"new learning key: no scored baseline session for it{had}"
    row = KeyResult(
        key,
        cand.n if cand else 0,
        NEW_KEY,
        None,
        "-",
        _tolerated(options),
        Outcome.FAIL,
        reason
        + (
            ""
            if options.allow_new_keys
            else "; set allow_new_keys = true to let new keys through ungated, or save a baseline that has it"
        ),
        worst=tuple(s for s, _ in (cand.worst if cand else ())),
        missing=cand.missing if cand else 0,
    )
    return row.accept("allow_new_keys = true") if options.allow_new_keys else row


KIND = GateKind("regression", RegressionOptions, RegressionOptions.build, evaluate, scored=True)
