"""Gate evaluation: series in, one row per learning key out, Holm's correction across keys."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from pytest_atlas._dsn import Dsn
from pytest_atlas.domain import assess_drift, reward_baseline
from pytest_atlas.errors import GateError
from pytest_atlas.gates._query import (
    ALL_KEYS,
    DriftInput,
    Series,
    connection,
    fetch_drift_inputs,
    fetch_modes,
    fetch_review,
    fetch_series,
)
from pytest_atlas.gates._result import NEW_KEY, GateResult, KeyResult
from pytest_atlas.gates._spec import GateSpec
from pytest_atlas.stats._compare import (
    Comparison,
    Outcome,
    ThresholdCheck,
    check_threshold,
    compare,
    compare_paired,
    holm_adjust,
)

__all__ = [
    "drift_rows",
    "evaluate",
    "mode_rows",
    "regression_rows",
    "review_rows",
    "threshold_rows",
]


def _f(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def _interval(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"[{low:.3f}, {high:.3f}]"


def _missing_note(series: Series) -> str:
    note = f"; {series.missing} session(s) without a usable score left out" if series.missing else ""
    if series.uncertain:
        note += f"; {series.uncertain} session(s) whose judges' uncertainty is above max_uncertainty left out"
    return note


# ------------------------------------------------------------------------------------------------
# threshold
# ------------------------------------------------------------------------------------------------


def threshold_rows(series: Mapping[str, Series], spec: GateSpec) -> list[KeyResult]:
    """Is each key's mean reward at least ``spec.threshold``? Holm across keys."""
    assert spec.threshold is not None
    keys = sorted(series)
    checks = holm_adjust(
        [
            check_threshold(
                series[key].sample,
                spec.threshold,
                alpha=spec.alpha,
                power=spec.power,
                method=spec.method,
                n_resamples=spec.n_resamples,
                seed=spec.seed,
            )
            for key in keys
        ]
    )
    return [_threshold_row(series[key], check) for key, check in zip(keys, checks, strict=True)]


def _threshold_row(series: Series, check: ThresholdCheck) -> KeyResult:
    reason = check.reason
    outcome = check.outcome
    if series.n == 0:  # sessions, but not one usable score: no evidence for the key, never inconclusive
        outcome = Outcome.FAIL
        reason = (
            "no usable scores: "
            + "; ".join(
                filter(
                    None,
                    (
                        f"{series.missing} session(s) have no score or a score that is not a number"
                        if series.missing
                        else "",
                        f"{series.uncertain} session(s) were judged with uncertainty above max_uncertainty"
                        if series.uncertain
                        else "",
                    ),
                )
            )
            or "no usable scores"
        )
    return KeyResult(
        learning_key=series.learning_key,
        n=check.n,
        statistic="mean",
        value=check.mean,
        bound=_interval(check.lower, check.upper),
        threshold=f">= {check.threshold:g}",
        outcome=outcome,
        reason=reason + (_missing_note(series) if series.n else ""),
        worst=tuple(session for session, _ in series.worst),
        missing=series.missing,
        p_value=check.p_value,
        p_adjusted=check.p_adjusted,
        detail={
            "method": check.method,
            "sd": check.sd,
            "lower": check.lower,
            "upper": check.upper,
            "alpha": check.alpha,
            "shortfall_detectable": check.shortfall_detectable,
            "uncertainty_mean": series.uncertainty_mean,
            "uncertain": series.uncertain,
        },
    )


# ------------------------------------------------------------------------------------------------
# regression
# ------------------------------------------------------------------------------------------------


def _pairs(base: Series, cand: Series) -> tuple[list[float], list[float]] | None:
    if base.tasks is None or cand.tasks is None or len(cand.tasks) < 2:
        return None
    if set(base.tasks) != set(cand.tasks):
        return None
    tasks = sorted(cand.tasks)
    return [base.tasks[t][0] for t in tasks], [cand.tasks[t][0] for t in tasks]


def regression_rows(candidate: Mapping[str, Series], baseline: Mapping[str, Series], spec: GateSpec) -> list[KeyResult]:
    """Did each key's mean reward drop against the baseline? Paired by task when both windows ran
    the same tasks (``spec.paired`` None) or when asked (True). Holm across keys."""
    keys = sorted(set(candidate) | set(baseline))
    compared: list[tuple[str, Comparison]] = []
    rows: dict[str, KeyResult] = {}
    for key in keys:
        cand, base = candidate.get(key), baseline.get(key)
        if base is None or base.n == 0:
            rows[key] = _new_key(key, cand, base, spec)
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
                _tolerated(spec),
                Outcome.FAIL,
                f"{held} for this learning key, which has {base.n} scored baseline session(s): the candidate "
                "stopped producing it (narrow the gate's learning_key if that is intended)",
                worst=(),
                missing=cand.missing if cand else 0,
            )
            continue
        pairs = _pairs(base, cand) if spec.paired is not False else None
        options: dict[str, Any] = {
            "method": spec.method,
            "alpha": spec.alpha,
            "tolerance": spec.tolerance,
            "min_effect": spec.min_effect,
            "power": spec.power,
            "n_resamples": spec.n_resamples,
            "seed": spec.seed,
        }
        if pairs is not None:
            result = compare_paired(pairs[0], pairs[1], **options)
        elif spec.paired:
            rows[key] = KeyResult(
                key,
                cand.n,
                "diff",
                None,
                "-",
                _tolerated(spec),
                Outcome.INCONCLUSIVE,
                "paired = true, but the two windows did not run the same tasks "
                "(or ran too many distinct tasks to pair)",
                worst=tuple(s for s, _ in cand.worst),
                missing=cand.missing,
            )
            continue
        else:
            result = compare(base.sample, cand.sample, **options)
        compared.append((key, result))
    for key, result in zip([k for k, _ in compared], holm_adjust([r for _, r in compared]), strict=True):
        cand = candidate[key]
        rows[key] = KeyResult(
            learning_key=key,
            n=cand.n,
            statistic="diff",
            value=result.difference,
            bound=_interval(result.lower, result.upper),
            threshold=_tolerated(spec),
            outcome=result.outcome,
            reason=result.reason + _missing_note(cand),
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


def _tolerated(spec: GateSpec) -> str:
    return f"drop <= {spec.tolerance:g}"


def _new_key(key: str, cand: Series | None, base: Series | None, spec: GateSpec) -> KeyResult:
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
        _tolerated(spec),
        Outcome.FAIL,
        reason
        + (
            ""
            if spec.allow_new_keys
            else "; set allow_new_keys = true to let new keys through ungated, or save a baseline that has it"
        ),
        worst=tuple(s for s, _ in (cand.worst if cand else ())),
        missing=cand.missing if cand else 0,
    )
    return row.accept("allow_new_keys = true") if spec.allow_new_keys else row


# ------------------------------------------------------------------------------------------------
# drift (the Atlas way) and stored alerts
# ------------------------------------------------------------------------------------------------


def _stored_alert(item: DriftInput) -> bool:
    if item.stored_alert is True:
        return True
    return isinstance(item.stored_drift, Mapping) and (
        item.stored_drift.get("alert") is True or item.stored_drift.get("drift_alert") is True
    )


def drift_rows(inputs: Sequence[DriftInput], spec: GateSpec) -> list[KeyResult]:
    """Recompute Atlas's drift assessment of every assessed session and read the alerts Atlas
    stored; a key fails on any alert, is inconclusive when no session had enough baseline."""
    by_key: dict[str, list[DriftInput]] = {}
    for item in inputs:
        by_key.setdefault(item.learning_key if spec.by_key else ALL_KEYS, []).append(item)
    rows = []
    for key in sorted(by_key):
        items = by_key[key]
        recomputed: list[int] = []
        stored: list[int] = []
        insufficient = 0
        reasons: dict[str, int] = {}
        largest = 0.0
        for item in items:
            baseline = reward_baseline(list(item.history), window=spec.window)
            assessment = assess_drift(
                item.reward_stats,
                baseline,
                threshold=spec.z_threshold,
                min_baseline=spec.min_baseline,
                window=spec.window,
                learning_key=item.learning_key or None,
            )
            if assessment is None:
                continue
            if assessment["reason"] == "insufficient_baseline":
                insufficient += 1
            if assessment["alert"]:
                recomputed.append(item.session_id)
                reasons[assessment["reason"]] = reasons.get(assessment["reason"], 0) + 1
            for metric in ("score_z", "score_mad_z"):
                value = assessment[metric]
                if value is not None and math.isfinite(value):
                    largest = max(largest, abs(value))
            if spec.stored and _stored_alert(item):
                stored.append(item.session_id)
        alerts = sorted(set(recomputed) | set(stored))
        if alerts:
            parts = []
            if recomputed:
                parts.append(
                    f"{len(recomputed)} recomputed alert(s) ("
                    + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
                    + ")"
                )
            if stored:
                parts.append(f"{len(stored)} alert(s) stored by Atlas in metadata.drift")
            outcome, reason = Outcome.FAIL, "drift: " + "; ".join(parts)
        elif insufficient == len(items):
            outcome = Outcome.INCONCLUSIVE
            reason = (
                f"insufficient_baseline: every assessed session had fewer than {spec.min_baseline} baseline sessions"
            )
        else:
            outcome = Outcome.PASS
            reason = f"no drift alert in {len(items)} session(s)" + (
                f" ({insufficient} with insufficient_baseline)" if insufficient else ""
            )
        rows.append(
            KeyResult(
                learning_key=key,
                n=len(items),
                statistic="alerts",
                value=float(len(alerts)),
                bound=f"max |z| {largest:.2f}",
                threshold=f"|z| < {spec.z_threshold:g}",
                outcome=outcome,
                reason=reason,
                worst=tuple(alerts[:5]),
                detail={
                    "recomputed_alerts": len(recomputed),
                    "stored_alerts": len(stored),
                    "insufficient_baseline": insufficient,
                    "max_abs_z": largest,
                    "window": spec.window,
                },
            )
        )
    return rows


# ------------------------------------------------------------------------------------------------
# review status and execution modes (exact shares of the selected sessions)
# ------------------------------------------------------------------------------------------------


def review_rows(counts: Mapping[str, Mapping[str, Any]], spec: GateSpec) -> list[KeyResult]:
    rows = []
    for key in sorted(counts):
        entry = counts[key]
        total = int(entry["total"])
        statuses: Mapping[str, int] = entry["statuses"]
        ids: Mapping[str, list[int]] = entry["ids"]
        quarantined = statuses.get("quarantined", 0)
        pending = statuses.get("pending", 0)
        share = pending / total if total else 0.0
        bound = spec.max_pending_share
        if quarantined:
            outcome, worst = Outcome.FAIL, tuple(ids.get("quarantined", []))
            reason = f"{quarantined} quarantined session(s)"
        elif bound is not None and share > bound:
            outcome, worst = Outcome.FAIL, tuple(ids.get("pending", []))
            reason = f"{pending} of {total} sessions pending review ({share:.1%} > {bound:.1%})"
        else:
            outcome, worst = Outcome.PASS, ()
            reason = f"no quarantined session; {pending} of {total} pending"
        rows.append(
            KeyResult(
                learning_key=key,
                n=total,
                statistic="pending",
                value=share,
                bound=f"{quarantined} quarantined",
                threshold="0 quarantined" + (f", pending <= {bound:.0%}" if bound is not None else ""),
                outcome=outcome,
                reason=reason,
                worst=worst,
                detail={k: v for k, v in statuses.items() if k},
            )
        )
    return rows


def mode_rows(counts: Mapping[str, Mapping[str, Any]], spec: GateSpec) -> list[KeyResult]:
    rows = []
    for key in sorted(counts):
        entry = counts[key]
        modes: Mapping[str | None, int] = entry["modes"]
        ids: Mapping[str | None, list[int]] = entry["ids"]
        missing = modes.get(None, 0)
        total = int(entry["total"]) - missing
        problems: list[str] = []
        worst: list[int] = []
        shares: dict[str, float] = {}
        for mode, (low, high) in spec.modes.items():
            share = modes.get(mode, 0) / total if total else 0.0
            shares[mode] = share
            if total and not low <= share <= high:
                problems.append(f"{mode} share {share:.1%} outside [{low:.0%}, {high:.0%}]")
                worst.extend(ids.get(mode, [])[: 5 - len(worst)])
        if not total:  # no evidence about modes at all: never inconclusive
            outcome, reason = Outcome.FAIL, f"no session records an execution_mode ({missing} without)"
        elif problems:
            outcome, reason = Outcome.FAIL, "; ".join(problems)
        else:
            outcome, reason = Outcome.PASS, "every execution-mode share within its bounds"
        observed = ", ".join(f"{mode} {share:.0%}" for mode, share in shares.items())
        wanted = ", ".join(f"{mode} {low:.0%}-{high:.0%}" for mode, (low, high) in spec.modes.items())
        rows.append(
            KeyResult(
                learning_key=key,
                n=total,
                statistic="shares",
                value=None,
                bound=observed,
                threshold=wanted,
                outcome=outcome,
                reason=reason,
                worst=tuple(worst),
                missing=missing,
                detail={str(mode): count for mode, count in modes.items()},
            )
        )
    return rows


# ------------------------------------------------------------------------------------------------
# the whole gate, against a database
# ------------------------------------------------------------------------------------------------


def _check_baseline(spec: GateSpec, baseline: Mapping[str, Series], where: str) -> None:
    """An empty baseline proves nothing: an error, whatever ``allow_inconclusive`` says."""
    if not any(series.n for series in baseline.values()):
        missing = sum(series.missing for series in baseline.values())
        held = f" ({missing} session(s) without a usable score)" if missing else ""
        raise GateError(
            f"the baseline of regression gate {spec.name!r} is empty: {where} holds no scored session{held}",
            hint="fix the baseline selection (a typo in a metadata value matches nothing) or save the baseline "
            "again with --atlas-save-baseline from a run you trust",
        )


def evaluate(
    spec: GateSpec,
    source: psycopg.Connection[Any] | str | Dsn,
    *,
    baseline: Mapping[str, Series] | None = None,
    record: bool = False,
    baseline_label: str = "the baseline given",
) -> GateResult:
    """Evaluate one gate against a database (a connection or a DSN).

    Regression gates compare with ``baseline`` (series by learning key, e.g. read from a baseline
    file) or, when the spec declares one, with a baseline selection in the same database. With
    ``record`` true a regression gate that has no baseline records its series and passes (that is
    how ``--atlas-save-baseline`` runs work). Raises :class:`~pytest_atlas.errors.GateError` when the
    database cannot be read, and when a regression gate's baseline holds no scored session
    (``baseline_label`` says where that baseline came from).
    """
    notes: list[str] = []
    series: dict[str, Series] = {}
    with connection(source) as conn:
        if spec.kind in ("threshold", "regression"):
            series = fetch_series(conn, spec.selection, by_key=spec.by_key, digits=spec.digits)
            if spec.kind == "threshold":
                rows = threshold_rows(series, spec)
            else:
                if baseline is None and spec.baseline is not None:
                    baseline = fetch_series(conn, spec.baseline, by_key=spec.by_key, digits=spec.digits)
                    notes.append("baseline: sessions selected by " + str(spec.baseline.describe()))
                    baseline_label = "its baseline selection " + str(spec.baseline.describe() or "(every session)")
                if baseline is None:
                    if record:
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
                        notes.append("no baseline: recording only")
                    else:
                        raise GateError(
                            f"regression gate {spec.name!r} has no baseline",
                            hint="pass --atlas-baseline PATH (written by --atlas-save-baseline from a run you "
                            "trust) or declare baseline = { ...selection... } in the gate",
                        )
                else:
                    _check_baseline(spec, baseline, baseline_label)
                    rows = regression_rows(series, baseline, spec) if series else []
        elif spec.kind == "drift":
            rows = drift_rows(fetch_drift_inputs(conn, spec.selection, window=spec.window), spec)
        elif spec.kind == "review":
            rows = review_rows(fetch_review(conn, spec.selection, by_key=spec.by_key), spec)
        else:
            rows = mode_rows(fetch_modes(conn, spec.selection, by_key=spec.by_key), spec)
    message = (
        ""
        if rows
        else "the gate's selection matched no sessions: "
        + (str(spec.selection.describe()) if spec.selection.describe() else "the sessions table is empty")
    )
    return GateResult(
        spec.name,
        spec.kind,
        tuple(rows),
        message=message,
        selection=spec.describe(),
        allow_inconclusive=spec.allow_inconclusive,
        notes=tuple(notes),
        series=series,
    )
