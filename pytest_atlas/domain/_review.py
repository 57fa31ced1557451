"""The decisions a run records besides its steps: the adaptive route, the drift assessment, the review.

Each follows Atlas's order and rules: the mode is routed (with a capability probe when the learning
key has history), the reward is assessed for drift against the key's earlier sessions (exactly as
Atlas computes it), and the review gate holds or approves the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from pytest_atlas.domain._common import Doc
from pytest_atlas.domain._drift import drift_document, reward_baseline
from pytest_atlas.domain._source import Source
from pytest_atlas.errors import InvalidArgument

__all__ = ["Adaptive", "Review", "adaptive_route", "build_drift", "decide_review", "drift_against", "forced_sample"]


@dataclass(frozen=True)
class Adaptive:
    """How the run was routed: the execution mode, its summary, and the capability probe (if any)."""

    mode: str
    summary: Doc
    probe: bool
    probe_mode: str | None
    probe_confidence: float | None
    route_reason: str


def adaptive_route(src: Source, mode: str, history_count: int, legacy: bool) -> Adaptive:
    """The adaptive summary Atlas records for ``mode``: a capability probe runs when the key has history."""
    probe = history_count > 0 and mode != "escalate"
    probe_mode: str | None = None
    confidence: float | None = None
    if not probe:
        reason = "no_learning_history" if mode != "escalate" else "capability_probe"
    else:
        reason = src.pick(("capability_probe", "probe_fallback", "mode_override", "forced"))
        if src.flag(0.85):
            confidence = round(src.real(0.0, 1.0), 3)
            probe_mode = mode if src.flag(0.8) else src.pick(("paired", "auto", "coach", "unsure"))
        # else: {mode: null, confidence: null} (missing API credentials)
    entry: Doc = {"mode": mode}
    if confidence is not None:
        entry["confidence"] = confidence
    summary: Doc = {"adaptive_mode": mode, "mode_history": [entry]}
    if confidence is not None:
        summary["confidence"] = confidence
    if probe:
        summary["probe"] = {"mode": probe_mode, "confidence": confidence}
    return Adaptive(mode, summary, probe, probe_mode, confidence, reason)


def build_drift(
    src: Source,
    stats: Doc,
    *,
    key: str | None,
    alert: bool | None,
    window: int = 50,
    threshold: float = 3.0,
    min_baseline: int = 5,
) -> Doc:
    """A drift document for ``stats`` against a plausible history of earlier scores for the same key.

    The history is drawn, then the current stats join it (Atlas's baseline includes the current
    session), and the assessment is computed exactly as Atlas does. ``alert`` forces the outcome:
    ``True`` places the current score well away from a tight history, ``False`` inside it.
    """
    score = float(stats["score"])
    uncertainty = float(stats["uncertainty_mean"])
    best = float(stats["best_uncertainty"])
    # a dozen earlier sessions show every outcome (a full window of 50 only costs time)
    longest = min(window - 1, max(min_baseline, 1) + 10)
    size = src.integer(0, longest) if alert is None else src.integer(max(min_baseline, 1), longest)
    centre = min(1.0, max(0.0, score + src.real(-0.1, 0.1)))
    spread = src.real(0.01, 0.1)
    if alert:  # a tight history far from the current score
        centre = 0.2 if score >= 0.6 else 0.9
        spread = src.real(0.005, 0.02)
    elif alert is False:  # the current score sits at the centre of a history that includes it
        centre = score
    history: list[Doc] = []
    for index in range(size):
        offset = spread * (((index * 7919) % 13) / 6.0 - 1.0) if alert is not None else src.real(-spread, spread)
        past = min(1.0, max(0.0, centre + offset))
        u = min(
            1.0,
            max(
                0.0,
                uncertainty
                + (spread * (((index * 104729) % 11) / 5.0 - 1.0) if alert is False else 0.0)
                + (src.real(-0.05, 0.05) if alert is None else 0.0),
            ),
        )
        history.append({"score": past, "score_mean": past, "uncertainty_mean": u, "best_uncertainty": min(u, best)})
    if alert is False and history:
        # mirror the history around the current values so neither z-score can be large
        mirrored = [
            dict(
                h,
                score=2 * score - h["score"],
                score_mean=2 * score - h["score_mean"],
                uncertainty_mean=2 * uncertainty - h["uncertainty_mean"],
            )
            for h in history
        ]
        history = (history + mirrored)[: window - 1]
    rows = [dict(stats), *history][:window]

    def assess(baseline: Doc) -> Doc:
        return drift_document(
            stats, baseline, threshold=threshold, window=window, min_baseline=min_baseline, learning_key=key
        )

    document = assess(reward_baseline(rows, window))
    if alert is not None and document["alert"] != alert:
        # the construction above decides nearly always; this is the fallback that always decides
        document = assess(_forced_baseline(stats, alert=alert, window=window, min_baseline=min_baseline))
    return document


def drift_against(
    stats: Doc,
    history: Sequence[Doc],
    *,
    key: str,
    window: int = 50,
    threshold: float = 3.0,
    min_baseline: int = 5,
) -> Doc:
    """The drift document Atlas writes for ``stats`` when ``history`` holds the ``reward_stats`` of
    the key's earlier sessions, newest first: the baseline is the newest ``window`` rows, the
    current session's own stats first (they are written before the assessment runs)."""
    baseline = reward_baseline([dict(stats), *history][: max(window, 1)], max(window, 1))
    return drift_document(
        stats, baseline, threshold=threshold, window=window, min_baseline=min_baseline, learning_key=key
    )


def forced_sample(
    stats: Doc,
    history: Sequence[Doc],
    *,
    key: str,
    alert: bool,
    score_range: tuple[float, float],
    window: int = 50,
    threshold: float = 3.0,
    min_baseline: int = 5,
) -> tuple[float, float] | None:
    """The single reward sample ``(score, uncertainty)`` that gives Atlas's detector the ``alert``
    outcome against ``history`` (newest first), or None when ``stats`` already gives it.

    An alert is sought with a score at an end of ``score_range`` (the one farther from the
    history's median first), then with an uncertainty of 0 or 1 as well; no alert with the
    history's medians. Raises :class:`InvalidArgument` when no such sample exists: with fewer
    than ``min_baseline - 1`` earlier sessions (Atlas never alerts on an insufficient baseline) or
    when the history itself is so spread (earlier alerts fill much of the window) that no value
    stands out."""

    def outcome(score: float, uncertainty: float) -> bool:
        candidate = dict(stats, score=score, score_mean=score, uncertainty_mean=uncertainty)
        return bool(
            drift_against(candidate, history, key=key, window=window, threshold=threshold, min_baseline=min_baseline)[
                "alert"
            ]
        )

    score, uncertainty = float(stats["score"]), float(stats["uncertainty_mean"])
    if (
        bool(
            drift_against(stats, history, key=key, window=window, threshold=threshold, min_baseline=min_baseline)[
                "alert"
            ]
        )
        == alert
    ):
        return None
    recent = list(history[: max(window, 1) - 1])
    lo, hi = score_range
    past_scores = [float(h.get("score_mean", h.get("score")) or 0.0) for h in recent] or [score]
    past_uncertainty = [float(h.get("uncertainty_mean") or 0.0) for h in recent] or [uncertainty]
    centre, spread = median(past_scores), median(past_uncertainty)
    if alert:
        rows = len(recent) + 1
        if rows < min_baseline:
            raise InvalidArgument(
                f"drift_alert=True (drifting=True) cannot be honoured for learning key {key[:16]!r}: it has "
                f"{len(recent)} earlier session(s) with reward_stats and Atlas's drift detector needs "
                f"{max(min_baseline - 1, 0)} (min_baseline {min_baseline} counts the session itself) before it "
                "can alert",
                hint=f"build at least {max(min_baseline - 1, 0)} sessions of the key (without drifting=True) "
                "before the drifting ones",
            )
        far_score = lo if abs(lo - centre) >= abs(hi - centre) else hi
        far_uncertainty = 0.0 if spread >= 0.5 else 1.0
        near_score = hi if far_score == lo else lo
        candidates = [
            (s, u)
            for u in (uncertainty, far_uncertainty, 1.0 - far_uncertainty)
            for s in (far_score, near_score, score)
            if (s, u) != (score, uncertainty)
        ]
    else:
        inside = min(hi, max(lo, centre))
        candidates = [(inside, spread), (score, spread), (inside, uncertainty)]
    for candidate in candidates:
        if outcome(*candidate) == alert:
            return candidate
    raise InvalidArgument(
        f"drift_alert={alert} cannot be honoured for learning key {key[:16]!r}: no reward within score "
        f"{score_range} gives Atlas's drift detector that outcome against the key's last {len(recent)} "
        "session(s)" + (" (earlier outliers fill too much of the window)" if alert else ""),
        hint="build more ordinary sessions of the key between the drifting ones"
        if alert
        else "widen the score range or build the sessions without drift_alert=False",
    )


def _forced_baseline(stats: Doc, *, alert: bool, window: int, min_baseline: int) -> Doc:
    score = float(stats["score"])
    uncertainty = float(stats["uncertainty_mean"])
    if not alert:
        count = max(min_baseline - 1, 0)  # too few rows: "insufficient_baseline", never an alert
        return reward_baseline([dict(stats)] * count, window)
    far = 0.0 if score > 0.5 else 1.0
    others = [
        {"score": far + 0.001 * (i % 3), "uncertainty_mean": uncertainty, "best_uncertainty": uncertainty}
        for i in range(max(min_baseline, 12) - 1)
    ]
    return reward_baseline([dict(stats), *others], window)


@dataclass(frozen=True)
class Review:
    """The review decision of a finished run: what the column says, and what the metadata records."""

    require_approval: bool
    #: ``metadata.review_status`` (None when the run recorded none)
    meta_status: str | None
    notes: str | None
    #: ``sessions.review_status``
    column_status: str


def decide_review(src: Source, *, status: str, drift: Doc | None, pinned: str | None) -> Review:
    """Atlas's review gating: a drift alert holds the session as pending, gating off auto-approves it;
    a reviewer may act later (``pinned`` is the caller's review_status)."""
    alert = bool(drift and drift.get("alert"))
    require_approval = src.key_flag(0.8) if not alert else src.key_flag(0.9)
    meta_status: str | None = None
    notes: str | None = None
    if status == "succeeded":
        if alert:
            meta_status, notes = "pending", str(drift["message"]) if drift else None
        elif not require_approval:
            meta_status, notes = "approved", "Auto-approved (review gating disabled)."
    column_status = meta_status or "pending"
    if pinned is not None:
        column_status = pinned
    elif status == "succeeded" and src.key_flag(0.3):
        column_status = src.key_pick(("approved", "quarantined"))  # a reviewer acted later
    if column_status == "quarantined" and notes is None and src.flag(0.6):
        notes = src.pick(("Quarantined: hallucinated tool output", "Needs a second look"))
    return Review(require_approval, meta_status, notes, column_status)
