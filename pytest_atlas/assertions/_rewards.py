"""Reward assertions: thresholds, regressions, drift, review status, execution modes.

Each helper reads from a database (a psycopg connection such as ``atlas_db`` / ``atlas_tx``, or a
DSN) -- or, for the reward helpers, straight from lists of scores -- evaluates the gate, returns
the :class:`~pytest_atlas.gates.GateResult` when it passes and raises an ``AssertionError``
subclass carrying that result when it does not. The failure text is a compact table::

    gate       learning key   n    statistic    bound / interval   threshold  outcome  worst sessions
    ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import psycopg

from pytest_atlas._dsn import Dsn, hide_password
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates import (
    ALL_KEYS,
    KINDS,
    DriftInput,
    GateResult,
    GateSpec,
    KeyResult,
    Selection,
    Series,
    connection,
    drift_rows,
    fetch_modes,
    fetch_review,
    fetch_series,
    gate_result,
    mode_rows,
    read_baseline,
    read_drift,
    regression_rows,
    review_rows,
    threshold_rows,
    unread_names,
)
from pytest_atlas.reporting import render_failure
from pytest_atlas.stats import Sample

__all__ = [
    "ExecutionModesOutOfBounds",
    "ReviewNotClean",
    "RewardAssertionError",
    "RewardBelowThreshold",
    "RewardDrift",
    "RewardRegression",
    "assert_execution_modes",
    "assert_no_drift",
    "assert_no_regression",
    "assert_review_clean",
    "assert_reward_at_least",
]

_SELECTION_NAMES = frozenset(Selection.__dataclass_fields__)


class RewardAssertionError(AssertionError):
    """A reward gate did not pass. ``result`` is the :class:`~pytest_atlas.gates.GateResult`."""

    def __init__(self, result: GateResult) -> None:
        self.result = result
        super().__init__(render_failure(result))

    @property
    def outcome(self) -> str:
        return self.result.outcome.value


class RewardBelowThreshold(RewardAssertionError):
    """The mean reward is below the threshold (or cannot be shown to reach it)."""


class RewardRegression(RewardAssertionError):
    """The candidate's mean reward dropped against the baseline (or the drop cannot be ruled out)."""


class RewardDrift(RewardAssertionError):
    """Atlas's drift detector alerts (recomputed, or stored in ``metadata.drift``)."""


class ReviewNotClean(RewardAssertionError):
    """Quarantined sessions, or too many pending review."""


class ExecutionModesOutOfBounds(RewardAssertionError):
    """An execution-mode share (auto / paired / coach) is outside its bounds."""


for _cls in (
    RewardAssertionError,
    RewardBelowThreshold,
    RewardRegression,
    RewardDrift,
    ReviewNotClean,
    ExecutionModesOutOfBounds,
):
    _cls.__module__ = "pytest_atlas"

Source = psycopg.Connection[Any] | str | Dsn
ScoreSource = Source | Sequence[Any] | Mapping[str, Any]


def _is_database(source: object) -> bool:
    return isinstance(source, psycopg.Connection | str | Dsn)


def _split(name: str, options: Mapping[str, Any]) -> tuple[Selection, dict[str, Any]]:
    selection = {k: v for k, v in options.items() if k in _SELECTION_NAMES}
    rest = {k: v for k, v in options.items() if k not in _SELECTION_NAMES}
    try:
        return Selection.build(**selection), rest
    except InvalidArgument as exc:
        raise InvalidArgument(f"{name}: {exc.problem}", hint=exc.hint) from None


def _spec(name: str, kind: str, options: Mapping[str, Any]) -> GateSpec:
    return GateSpec.build(name, {"kind": kind, **{k: v for k, v in options.items() if v is not None}})


def _series_of_scores(key: str, scores: Any) -> Series:
    """A series from plain scores; None and NaN count as missing, anything else must be a number."""
    if isinstance(scores, str | bytes) or not isinstance(scores, Sequence):
        raise InvalidArgument(
            f"scores for {key!r} must be a list of numbers, got {type(scores).__name__}",
            hint="pass [0.8, 0.75, ...] or {learning_key: [...]}",
        )
    present = [s for s in scores if not (s is None or (isinstance(s, float) and math.isnan(s)))]
    sample = Sample.of(present, what=f"scores[{key!r}]" if key != ALL_KEYS else "scores")
    return Series(key, sample, missing=len(scores) - len(present))


def _series(
    source: ScoreSource, selection: Selection, by_key: bool, digits: int = 4, *, with_ids: bool = False
) -> dict[str, Series]:
    if _is_database(source):
        with connection(source) as conn:  # type: ignore[arg-type]
            return fetch_series(conn, selection, by_key=by_key, digits=digits, with_ids=with_ids)
    if isinstance(source, Mapping):
        return {
            str(key): (value if isinstance(value, Series) else _series_of_scores(str(key), value))
            for key, value in source.items()
        }
    return {ALL_KEYS: _series_of_scores(ALL_KEYS, source)}


def _check(result: GateResult, error: type[RewardAssertionError]) -> GateResult:
    if result.blocking:
        raise error(result)
    return result


def _finish(
    rows: list[KeyResult],
    spec: GateSpec,
    series: Mapping[str, Any],
    error: type[RewardAssertionError],
    notes: Sequence[str] = (),
    *,
    source: object = None,
) -> GateResult:
    """The result (raising ``error`` when it blocks). With a database ``source``, every learning key
    and task the selection names must be among what was read (as for a gate)."""
    if _is_database(source):
        with connection(source) as conn:  # type: ignore[arg-type]
            rows = [*rows, *unread_names(conn, spec, KINDS[spec.kind], rows)]
    series = {key: replace(s, ids=None) if isinstance(s, Series) else s for key, s in series.items()}
    result = replace(gate_result(spec, rows, notes), series=series)
    return _check(result, error)


# ------------------------------------------------------------------------------------------------


def assert_reward_at_least(
    source: ScoreSource,
    threshold: float,
    *,
    by_key: bool = True,
    alpha: float = 0.05,
    power: float = 0.8,
    method: str = "welch",
    allow_inconclusive: bool = False,
    name: str = "reward-at-least",
    **selection: Any,
) -> GateResult:
    """Assert that the mean reward is at least ``threshold``, beyond noise.

    ``source``: a connection or DSN (then ``selection`` keywords such as ``learning_key``, ``last``,
    ``since``, ``status``, ``review_status``, ``metadata`` pick the sessions; quarantined ones are
    left out by default), a list of scores, or ``{learning_key: scores}``. Passes when the lower
    ``1 - alpha`` confidence bound of the mean reaches the threshold; raises
    :class:`RewardBelowThreshold` when the mean is below it beyond noise (Holm-corrected across
    keys) and -- unless ``allow_inconclusive`` -- when the data cannot tell.
    """
    source = hide_password(source)  # frames show a DSN redacted
    chosen, _ = _split("assert_reward_at_least", selection)
    spec = _spec(
        name,
        "threshold",
        {
            "threshold": threshold,
            "by_key": by_key,
            "alpha": alpha,
            "power": power,
            "method": method,
            "allow_inconclusive": allow_inconclusive,
            **selection,
        },
    )
    series = _series(source, chosen, by_key)
    return _finish(threshold_rows(series, spec), spec, series, RewardBelowThreshold, source=source)


def _baseline_series(
    baseline: Any, source: ScoreSource, spec: GateSpec, gate: str | None
) -> tuple[dict[str, Series], str]:
    if isinstance(baseline, Selection):
        if not _is_database(source):
            raise InvalidArgument(
                "a baseline Selection needs a database source", hint="pass a connection or DSN as the first argument"
            )
        return (
            _series(source, baseline, spec.by_key, spec.options.digits, with_ids=True),
            f"baseline: sessions {baseline.describe()}",
        )
    if isinstance(baseline, os.PathLike):
        gates = read_baseline(baseline)
        if gate is None:
            if len(gates) != 1:
                raise InvalidArgument(
                    f"baseline file {baseline} holds {len(gates)} gates: {', '.join(sorted(gates)) or 'none'}",
                    hint="name the one to compare with: baseline_gate='...'",
                )
            gate = next(iter(gates))
        if gate not in gates:
            raise InvalidArgument(
                f"baseline file {baseline} has no gate {gate!r}", hint=f"it has: {', '.join(sorted(gates)) or 'none'}"
            )
        return dict(gates[gate]), f"baseline: gate {gate!r} of {baseline}"
    if isinstance(baseline, str | Dsn):
        raise InvalidArgument(
            "baseline given as a string is ambiguous",
            hint="pass pathlib.Path('baseline.json') for a file, or a Selection for sessions in the same database",
        )
    return _series(baseline, Selection(), spec.by_key), "baseline: given scores"


def assert_no_regression(
    source: ScoreSource,
    baseline: Any,
    *,
    tolerance: float = 0.0,
    min_effect: float | None = 0.05,
    paired: bool | None = None,
    by_key: bool = True,
    alpha: float = 0.05,
    power: float = 0.8,
    method: str = "welch",
    allow_inconclusive: bool = False,
    baseline_gate: str | None = None,
    name: str = "no-regression",
    **selection: Any,
) -> GateResult:
    """Assert that the candidate's mean reward did not drop against a baseline.

    ``source`` gives the candidate (as for :func:`assert_reward_at_least`). ``baseline`` is a
    :class:`~pytest_atlas.gates.Selection` of sessions in the same database, a
    :class:`pathlib.Path` to a baseline file (``baseline_gate`` picks the gate when it holds
    several), a list of scores, or ``{learning_key: scores}``. Fails when the mean dropped by more
    than ``tolerance`` beyond noise (one-sided test at ``alpha``, Holm-corrected across keys);
    inconclusive when no drop was found but a drop of ``min_effect`` could not have been detected
    with ``power``. Paired by task when both windows ran the same tasks (``paired=None``).
    """
    source = hide_password(source)  # frames show a DSN redacted
    baseline = hide_password(baseline)  # (a string is refused below, perhaps a DSN: never shown)
    chosen, _ = _split("assert_no_regression", selection)
    spec = _spec(
        name,
        "regression",
        {
            "tolerance": tolerance,
            "min_effect": min_effect if min_effect is not None else False,
            "paired": paired,
            "by_key": by_key,
            "alpha": alpha,
            "power": power,
            "method": method,
            "allow_inconclusive": allow_inconclusive,
            **selection,
        },
    )
    base, note = _baseline_series(baseline, source, spec, baseline_gate)
    # the candidate's session ids, to find those a baseline selection shares with it
    series = _series(source, chosen, by_key, spec.options.digits, with_ids=isinstance(baseline, Selection))
    return _finish(regression_rows(series, base, spec), spec, series, RewardRegression, [note], source=source)


def assert_no_drift(
    source: Source | Sequence[Any],
    *,
    window: int = 50,
    threshold: float = 3.0,
    min_baseline: int = 5,
    last: int = 50,
    stored: bool = True,
    by_key: bool = True,
    allow_inconclusive: bool = True,
    name: str = "no-drift",
    **selection: Any,
) -> GateResult:
    """Assert that Atlas's drift detector does not alert on the newest ``last`` sessions.

    Recomputes Atlas's assessment exactly (z-score and MAD z-score of score and uncertainty against
    the ``window`` sessions before and including each one, ``threshold``, ``min_baseline``) and,
    with ``stored`` true, also fails on alerts Atlas already stored in ``metadata.drift`` /
    ``metadata.drift_alert``. ``source`` is a database, or a list of ``reward_stats`` objects in
    the order they were written (oldest first) for one learning key. A key whose every session had
    too small a baseline is inconclusive (allowed by default, as Atlas itself does not alert then).
    """
    source = hide_password(source)  # frames show a DSN redacted
    spec = _spec(
        name,
        "drift",
        {
            "window": window,
            "z_threshold": threshold,
            "min_baseline": min_baseline,
            "stored": stored,
            "by_key": by_key,
            "allow_inconclusive": allow_inconclusive,
            **selection,
        },
    )
    without: dict[str, int]
    if _is_database(source):
        chosen = Selection(**{**spec.selection.__dict__, "last": spec.selection.last or last})
        with connection(source) as conn:  # type: ignore[arg-type]
            inputs, without = read_drift(conn, chosen, window=window, last=last)
    else:
        if isinstance(source, str | bytes | Mapping) or not isinstance(source, Sequence):
            raise InvalidArgument(
                "assert_no_drift needs a database or a list of reward_stats objects",
                hint="pass atlas_db, a DSN, or [{'score': 0.8, ...}, ...] oldest first",
            )
        history = list(source)
        without = {}
        inputs = [
            DriftInput(
                index + 1,
                ALL_KEYS,
                history[index],
                None,
                None,
                tuple(reversed(history[max(0, index + 1 - window) : index + 1])),
            )
            for index in range(max(0, len(history) - last), len(history))
        ]
    return _finish(drift_rows(inputs, spec, without_stats=without), spec, {}, RewardDrift, source=source)


def assert_review_clean(
    source: Source,
    *,
    max_pending_share: float | None = None,
    by_key: bool = True,
    name: str = "review-clean",
    **selection: Any,
) -> GateResult:
    """Assert that no selected session is quarantined and, when ``max_pending_share`` is given, that
    at most that share (0..1) is still pending review. Quarantined sessions are always looked at."""
    source = hide_password(source)  # frames show a DSN redacted
    spec = _spec(name, "review", {"max_pending_share": max_pending_share, "by_key": by_key, **selection})
    with connection(source) as conn:
        counts = fetch_review(conn, spec.selection, by_key=by_key)
    return _finish(review_rows(counts, spec), spec, {}, ReviewNotClean, source=source)


def assert_execution_modes(
    source: Source,
    bounds: Mapping[str, float | Sequence[float]],
    *,
    by_key: bool = True,
    name: str = "execution-modes",
    **selection: Any,
) -> GateResult:
    """Assert bounds on the shares of execution modes (``metadata.execution_mode``).

    ``bounds`` maps a mode (``auto``, ``paired``, ``coach``) to a maximum share (``0.2``) or to
    ``[lower, upper]``. Shares are over the selected sessions that record a mode.
    """
    source = hide_password(source)  # frames show a DSN redacted
    spec = _spec(name, "execution_modes", {"modes": dict(bounds), "by_key": by_key, **selection})
    with connection(source) as conn:
        counts = fetch_modes(conn, spec.selection, by_key=by_key)
    return _finish(mode_rows(counts, spec), spec, {}, ExecutionModesOutOfBounds, source=source)
