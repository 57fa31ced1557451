"""The ``execution_modes`` gate: the shares of ``metadata.execution_mode`` (auto, paired, coach)
stay within their bounds.

Options: ``modes`` (required): ``{mode = max_share}`` or ``{mode = [min_share, max_share]}``.
Query: counts per execution mode and learning key. Verdict: a share outside its bounds fails; a key
whose sessions record no mode at all fails (no evidence is never a pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pytest_atlas._arguments import check_probability, unknown_names
from pytest_atlas._outcome import Outcome
from pytest_atlas.domain import LEGACY_EXECUTION_MODES, RECORDED_EXECUTION_MODES
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates._kind import Context, Evaluation, GateKind
from pytest_atlas.gates._result import KeyResult
from pytest_atlas.gates._selection import Selection
from pytest_atlas.gates._sql import tally

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._spec import GateSpec

__all__ = ["KIND", "ExecutionModesOptions", "fetch_modes", "mode_rows"]


def _bounds(value: Any) -> dict[str, tuple[float, float]]:
    """{"coach": 0.2} (at most 20 %) or {"coach": [0.05, 0.2]} (between 5 % and 20 %)."""
    if not isinstance(value, Mapping) or not value:
        raise InvalidArgument(
            f"modes must be a table of execution mode -> bound, got {value!r}",
            hint="for example modes = { coach = 0.2, auto = [0.5, 1.0] }",
        )
    out: dict[str, tuple[float, float]] = {}
    for mode, bound in value.items():
        if mode not in RECORDED_EXECUTION_MODES:
            error = unknown_names(
                "execution mode",
                [mode],
                RECORDED_EXECUTION_MODES,
                also=f"{', '.join(LEGACY_EXECUTION_MODES)} is what Atlas wrote before 0.1.12",
            )
            raise InvalidArgument(f"modes: {error.problem}", hint=error.hint)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            out[mode] = (0.0, check_probability(f"modes.{mode}", bound))
        elif isinstance(bound, list | tuple) and len(bound) == 2:
            low = check_probability(f"modes.{mode}[0]", bound[0])
            high = check_probability(f"modes.{mode}[1]", bound[1])
            if low > high:
                raise InvalidArgument(
                    f"modes.{mode}: lower share {low:g} above upper share {high:g}", hint="write [lower, upper]"
                )
            out[mode] = (low, high)
        else:
            raise InvalidArgument(
                f"modes.{mode} must be a share or [lower, upper], got {bound!r}",
                hint="shares are fractions: 0.2 means 20 %",
            )
    return out


@dataclass(frozen=True, kw_only=True)
class ExecutionModesOptions:
    modes: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> ExecutionModesOptions:
        return cls(modes=_bounds(options.get("modes")))

    def describe(self) -> dict[str, Any]:
        return {"modes": {mode: list(bounds) for mode, bounds in self.modes.items()}}


def evaluate(
    conn: psycopg.Connection[Any], spec: GateSpec, options: ExecutionModesOptions, context: Context
) -> Evaluation:
    return Evaluation(mode_rows(fetch_modes(conn, spec.selection, by_key=spec.by_key), spec))


def fetch_modes(
    conn: psycopg.Connection[Any], selection: Selection, *, by_key: bool = True, worst: int = 5
) -> dict[str, dict[str, Any]]:
    """Per key: ``total`` and, per ``metadata.execution_mode`` (None when absent), a count and ids."""
    return tally(conn, selection, sql.SQL("s.metadata ->> 'execution_mode'"), by_key=by_key, worst=worst, name="modes")


def mode_rows(counts: Mapping[str, Mapping[str, Any]], spec: GateSpec) -> list[KeyResult]:
    options: ExecutionModesOptions = spec.options
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
        for mode, (low, high) in options.modes.items():
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
        wanted = ", ".join(f"{mode} {low:.0%}-{high:.0%}" for mode, (low, high) in options.modes.items())
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


KIND = GateKind("execution_modes", ExecutionModesOptions, ExecutionModesOptions.build, evaluate)
