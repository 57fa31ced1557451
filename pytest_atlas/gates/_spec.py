"""Gate declarations: what a gate checks and how strictly, checked up front."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_atlas.domain import EXECUTION_MODES, LEGACY_EXECUTION_MODES, RECORDED_EXECUTION_MODES
from pytest_atlas.errors import InvalidArgument
from pytest_atlas.gates._selection import Selection
from pytest_atlas.stats._methods import canonical_method

__all__ = ["KINDS", "GateSpec"]

#: the kinds of gate, and the options each accepts besides the selection and the common ones
KINDS: dict[str, frozenset[str]] = {
    "threshold": frozenset({"threshold"}),
    "regression": frozenset({"baseline", "tolerance", "min_effect", "paired", "digits", "allow_new_keys"}),
    "drift": frozenset({"window", "z_threshold", "min_baseline", "stored"}),
    "review": frozenset({"max_pending_share"}),
    "execution_modes": frozenset({"modes"}),
}
_COMMON = frozenset(
    {"kind", "name", "by_key", "alpha", "power", "method", "seed", "n_resamples", "allow_inconclusive", "description"}
)
_SELECTION = frozenset(Selection.__dataclass_fields__)


def _number(name: str, value: Any, *, low: float = -math.inf, high: float = math.inf, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a number, got {value!r}", hint=f"for example {name} = 0.05")
    if value < low or value > high or (open_low and value == low):
        rng = f"({low:g}, {high:g}]" if open_low else f"[{low:g}, {high:g}]"
        raise InvalidArgument(f"{name} must lie in {rng}, got {value!r}", hint=f"pick {name} in {rng}")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int = 2**63 - 1, *, example: int | None = None) -> int:
    shown = f"from {low} to {high}" if high < 2**63 - 1 else f"of at least {low}"
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(
            f"{name} must be an integer {shown}, got {value!r}",
            hint=f"for example {name} = {example if example is not None else max(low, min(50, high))}",
        )
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be true or false, got {value!r}", hint=f"{name} = true")
    return value


def _modes(value: Any) -> dict[str, tuple[float, float]]:
    """{"coach": 0.2} (at most 20 %) or {"coach": [0.05, 0.2]} (between 5 % and 20 %)."""
    if not isinstance(value, Mapping) or not value:
        raise InvalidArgument(
            f"modes must be a table of execution mode -> bound, got {value!r}",
            hint="for example modes = { coach = 0.2, auto = [0.5, 1.0] }",
        )
    out: dict[str, tuple[float, float]] = {}
    for mode, bound in value.items():
        if mode not in RECORDED_EXECUTION_MODES:
            raise InvalidArgument(
                f"modes: unknown execution mode {mode!r}",
                hint=f"Atlas records {', '.join(EXECUTION_MODES)} ({', '.join(LEGACY_EXECUTION_MODES)} before 0.1.12)",
            )
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            out[mode] = (0.0, _number(f"modes.{mode}", bound, low=0.0, high=1.0))
        elif isinstance(bound, list | tuple) and len(bound) == 2:
            low = _number(f"modes.{mode}[0]", bound[0], low=0.0, high=1.0)
            high = _number(f"modes.{mode}[1]", bound[1], low=0.0, high=1.0)
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


@dataclass(frozen=True)
class GateSpec:
    """One gate. Build it with :meth:`build` (checks every option and names the wrong one)."""

    name: str
    kind: str
    selection: Selection = field(default_factory=Selection)
    by_key: bool = True
    alpha: float = 0.05
    power: float = 0.8
    method: str = "welch"
    seed: int = 0
    n_resamples: int = 2000
    allow_inconclusive: bool = False
    description: str = ""
    # threshold
    threshold: float | None = None
    # regression
    baseline: Selection | None = None
    tolerance: float = 0.0
    min_effect: float | None = 0.05
    paired: bool | None = None
    digits: int = 4
    allow_new_keys: bool = False
    # drift
    window: int = 50
    z_threshold: float = 3.0
    min_baseline: int = 5
    stored: bool = True
    # review
    max_pending_share: float | None = None
    # execution modes
    modes: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def build(cls, name: str, options: Mapping[str, Any]) -> GateSpec:
        """A gate from loose options (a TOML table, marker keywords). Raises InvalidArgument."""
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "[]:/\\\n"):
            raise InvalidArgument(
                f"gate name {name!r} is not usable",
                hint="name gates with letters, digits, '-', '_' and '.', e.g. 'reward-floor'",
            )
        kind = options.get("kind")
        if kind not in KINDS:
            raise InvalidArgument(
                f"gate {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}",
                hint='for example kind = "threshold"',
            )
        allowed = KINDS[kind] | _COMMON | _SELECTION
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise InvalidArgument(
                f"gate {name!r} ({kind}): unknown option(s) {', '.join(unknown)}",
                hint="allowed here: " + ", ".join(sorted(allowed - {"kind", "name"})),
            )
        try:
            return cls._build(name, kind, options)
        except InvalidArgument as exc:
            raise InvalidArgument(f"gate {name!r}: {exc.problem}", hint=exc.hint) from None

    @classmethod
    def _build(cls, name: str, kind: str, options: Mapping[str, Any]) -> GateSpec:
        selection = Selection.build(**{k: v for k, v in options.items() if k in _SELECTION})
        if selection.max_uncertainty is not None and kind not in ("threshold", "regression"):
            raise InvalidArgument(
                f"max_uncertainty applies to threshold and regression gates, not {kind}",
                hint="a drift gate recomputes Atlas's own check, which uses every session",
            )
        values: dict[str, Any] = {"name": name, "kind": kind, "selection": selection}
        if "by_key" in options:
            values["by_key"] = _boolean("by_key", options["by_key"])
        if "alpha" in options:
            values["alpha"] = _number("alpha", options["alpha"], low=0.0, high=0.5, open_low=True)
        if "power" in options:
            values["power"] = _number("power", options["power"], low=0.0, high=0.999, open_low=True)
        if "method" in options:
            values["method"] = canonical_method(options["method"])
        if "seed" in options:
            values["seed"] = _integer("seed", options["seed"], 0)
        if "n_resamples" in options:
            values["n_resamples"] = _integer("n_resamples", options["n_resamples"], 100, 1_000_000, example=2000)
        if "allow_inconclusive" in options:
            values["allow_inconclusive"] = _boolean("allow_inconclusive", options["allow_inconclusive"])
        if "description" in options:
            if not isinstance(options["description"], str):
                raise InvalidArgument(
                    f"description must be a string, got {options['description']!r}",
                    hint='for example description = "the reward floor agreed with the product team"',
                )
            values["description"] = options["description"]
        if kind == "threshold":
            if "threshold" not in options:
                raise InvalidArgument("a threshold gate needs threshold", hint="for example threshold = 0.7")
            # rewards are scores from 0 to 1: a threshold outside that range fails (or passes) every key
            values["threshold"] = _number("threshold", options["threshold"], low=0.0, high=1.0)
        if kind == "regression":
            if "baseline" in options:
                raw = options["baseline"]
                if not isinstance(raw, Mapping):
                    raise InvalidArgument(
                        f"baseline must be a table of selection options, got {raw!r}",
                        hint='for example baseline = { metadata = { run = "v1" } }',
                    )
                try:
                    values["baseline"] = Selection.build(**dict(raw))
                except InvalidArgument as exc:
                    raise InvalidArgument(f"baseline: {exc.problem}", hint=exc.hint) from None
            if "tolerance" in options:
                values["tolerance"] = _number("tolerance", options["tolerance"], low=0.0, high=1.0)
            if "min_effect" in options:
                raw_effect = options["min_effect"]
                values["min_effect"] = (
                    None
                    if raw_effect is None or raw_effect is False
                    else _number("min_effect", raw_effect, low=0.0, high=1.0, open_low=True)
                )
            if values.get("min_effect", 0.05) is not None and values.get("min_effect", 0.05) <= values.get(
                "tolerance", 0.0
            ):
                raise InvalidArgument(
                    "min_effect must be larger than tolerance",
                    hint="min_effect is the drop that must be detectable, tolerance the drop that is accepted",
                )
            if "paired" in options:
                raw_paired = options["paired"]
                if raw_paired == "auto":
                    raw_paired = None
                values["paired"] = None if raw_paired is None else _boolean("paired", raw_paired)
            if "digits" in options:
                values["digits"] = _integer("digits", options["digits"], 0, 12, example=4)
            if "allow_new_keys" in options:
                values["allow_new_keys"] = _boolean("allow_new_keys", options["allow_new_keys"])
        if kind == "drift":
            if "window" in options:
                values["window"] = _integer("window", options["window"], 1, 100_000)
            if "z_threshold" in options:
                values["z_threshold"] = _number("z_threshold", options["z_threshold"], low=0.0, open_low=True)
            if "min_baseline" in options:
                values["min_baseline"] = _integer("min_baseline", options["min_baseline"], 0, example=5)
            window = values.get("window", 50)
            if values.get("min_baseline", 5) > window:
                raise InvalidArgument(
                    f"min_baseline ({values.get('min_baseline', 5)}) is larger than window ({window}): "
                    "every session would have an insufficient baseline",
                    hint="keep min_baseline at most window (Atlas uses 5 and 50)",
                )
            if "stored" in options:
                values["stored"] = _boolean("stored", options["stored"])
        if kind == "review" and options.get("max_pending_share") is not None:
            values["max_pending_share"] = _number("max_pending_share", options["max_pending_share"], low=0.0, high=1.0)
        if kind == "execution_modes":
            values["modes"] = _modes(options.get("modes"))
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        """The gate's settings, JSON-ready (for the report)."""
        out: dict[str, Any] = {"kind": self.kind, **self.selection.describe()}
        if self.kind in ("threshold", "regression"):
            out.update(alpha=self.alpha, power=self.power, method=self.method)
        if self.kind == "threshold":
            out["threshold"] = self.threshold
        if self.kind == "regression":
            out.update(
                tolerance=self.tolerance,
                min_effect=self.min_effect,
                paired=self.paired,
                allow_new_keys=self.allow_new_keys,
            )
            if self.baseline is not None:
                out["baseline"] = self.baseline.describe()
        if self.kind == "drift":
            out.update(
                window=self.window, z_threshold=self.z_threshold, min_baseline=self.min_baseline, stored=self.stored
            )
        if self.kind == "review":
            out["max_pending_share"] = self.max_pending_share
        if self.kind == "execution_modes":
            out["modes"] = {mode: list(bounds) for mode, bounds in self.modes.items()}
        return out
