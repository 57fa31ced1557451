"""What a gate kind is: its options, how it evaluates, and what evaluation hands back.

A kind is one module in :mod:`pytest_atlas.gates._kinds` exposing ``KIND = GateKind(...)``; the
table of kinds is in that package's ``__init__`` (read its docstring to add one). This module
holds the pieces every kind shares: :class:`GateKind`, the :class:`Context` a kind is evaluated
in, the :class:`Evaluation` it returns, the statistical options that score-reading kinds accept
(:class:`Statistics`) and the formatting helpers of result rows. Light: no numpy, no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pytest_atlas.gates._result import KeyResult
from pytest_atlas.stats import canonical_method, check_alpha, check_power, check_resamples, check_seed

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.errors import GateError
    from pytest_atlas.gates._fields import PathCensus
    from pytest_atlas.gates._selection import Selection
    from pytest_atlas.gates._series import Series
    from pytest_atlas.gates._spec import GateSpec

__all__ = [
    "Context",
    "Evaluation",
    "GateKind",
    "KindOptions",
    "Statistics",
    "baseline_selection",
    "find_baseline",
    "interval",
    "missing_note",
    "no_baseline",
    "option_names",
]


class KindOptions(Protocol):
    """The options of one kind: a frozen dataclass whose fields are the option names."""

    def describe(self) -> dict[str, Any]: ...


OptionsT = TypeVar("OptionsT", bound=KindOptions)
BaselineT = TypeVar("BaselineT")


@dataclass(frozen=True)
class Context:
    """What the caller knows besides the gate and the database.

    ``baseline``: series given directly (a regression compares with them); ``baseline_label``
    says where they came from. ``load_baseline``: called with the gate's name when a kind needs a
    baseline it was not given (the plugin reads ``--atlas-baseline`` there; None when there is no
    file); it returns the series and their label. ``record``: the run saves a baseline
    (``--atlas-save-baseline``), so a regression gate without one records its series and passes.
    ``census`` / ``load_census``: the same for a fields gate's baseline field census.
    ``charts``: whether a report will draw the gate's charts; without one a kind skips the
    queries that only a chart reads (the newest scores of each key), and ``Evaluation.chart``
    stays empty.
    """

    baseline: Mapping[str, Series] | None = None
    baseline_label: str = "the baseline given"
    load_baseline: Callable[[str], tuple[Mapping[str, Series], str] | None] | None = None
    record: bool = False
    #: a fields gate's baseline census given directly, or read by name (the --atlas-baseline file)
    census: PathCensus | None = None
    load_census: Callable[[str], tuple[PathCensus, str] | None] | None = None
    charts: bool = True


@dataclass(frozen=True)
class Evaluation:
    """What a kind found: one row per learning key, notes for the reader, the series it read."""

    rows: list[KeyResult]
    notes: tuple[str, ...] = ()
    series: Mapping[str, Series] = field(default_factory=dict)
    #: what the report's charts draw (see ``GateResult.chart``)
    chart: Mapping[str, Any] = field(default_factory=dict)
    #: a fields gate's census of its selection (for --atlas-save-baseline)
    census: PathCensus | None = None


@dataclass(frozen=True)
class GateKind(Generic[OptionsT]):
    """One kind of gate.

    * ``name``: what ``kind = "..."`` says;
    * ``options``: the frozen dataclass of its own options (its fields are the option names the
      kind accepts besides the selection and the common ones);
    * ``build``: checks a mapping holding only those names and returns the options (raises
      :class:`~pytest_atlas.errors.InvalidArgument` naming the wrong one);
    * ``evaluate``: queries the database (read-only) and gives the verdict, one row per key;
    * ``scored``: it reads reward scores, so ``max_uncertainty`` applies to it;
    * ``keyed``: with ``by_key`` its rows are one per learning key it read (a fields gate's are
      paths), so the rows say which of the keys a gate names it had sessions of.
    """

    name: str
    options: type[OptionsT]
    build: Callable[[Mapping[str, Any]], OptionsT]
    evaluate: Callable[[psycopg.Connection[Any], GateSpec, OptionsT, Context], Evaluation]
    scored: bool = False
    keyed: bool = True

    @property
    def option_names(self) -> frozenset[str]:
        return option_names(self.options)


def option_names(options: type[Any]) -> frozenset[str]:
    return frozenset(f.name for f in fields(options))


@dataclass(frozen=True, kw_only=True)
class Statistics:
    """The options of every kind that tests reward scores (threshold, regression)."""

    alpha: float = 0.05
    power: float = 0.8
    method: str = "welch"
    seed: int | None = 0
    n_resamples: int = 2000

    @staticmethod
    def check(options: Mapping[str, Any]) -> dict[str, Any]:
        """The statistical options present in ``options``, checked."""
        checks: dict[str, Callable[[Any], Any]] = {
            "alpha": check_alpha,
            "power": check_power,
            "method": canonical_method,
            "seed": check_seed,
            "n_resamples": check_resamples,
        }
        return {name: check(options[name]) for name, check in checks.items() if name in options}

    def statistics(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "power": self.power, "method": self.method}

    def test_options(self) -> dict[str, Any]:
        """Keyword arguments of the :mod:`pytest_atlas.stats` tests."""
        return {
            "alpha": self.alpha,
            "power": self.power,
            "method": self.method,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
        }


def baseline_selection(raw: Any) -> Selection:
    """A kind's ``baseline`` option: a table of selection options, checked; one without any filter
    (``baseline = {}``) is refused: it would select the candidate's sessions too."""
    from pytest_atlas.errors import InvalidArgument
    from pytest_atlas.gates._selection import Selection

    if not isinstance(raw, Mapping):
        raise InvalidArgument(
            f"baseline must be a table of selection options, got {raw!r}",
            hint='for example baseline = { metadata = { run = "v1" } }',
        )
    try:
        selection = Selection.build(**dict(raw))
    except InvalidArgument as exc:
        raise InvalidArgument(f"baseline: {exc.problem}", hint=exc.hint) from None
    if selection.selects_every_session():
        shown = "{}" if not raw else repr(dict(raw))
        raise InvalidArgument(
            f"baseline = {shown} has no filter: it selects every session, the candidate's too, so the gate "
            "would compare its window with itself",
            hint="a baseline needs at least one filter that picks the sessions of the run you compare with, e.g. "
            'baseline = { metadata = { run = "main" } } (or learning_key, since/until, last, status, '
            "review_status, task); or leave baseline out and pass --atlas-baseline FILE",
        )
    return selection


def find_baseline(
    gate: str,
    given: BaselineT | None,
    given_label: str,
    selection: Selection | None,
    fetch: Callable[[Selection], BaselineT],
    load: Callable[[str], tuple[BaselineT, str] | None] | None,
) -> tuple[BaselineT | None, str, tuple[str, ...]]:
    """The baseline a kind compares with, where it came from, and the notes to show: the one
    ``given``, else the one ``fetch`` reads for the kind's ``baseline`` selection, else what ``load``
    finds for ``gate`` (the --atlas-baseline file); None when there is none."""
    if given is not None:
        return given, given_label, ()
    if selection is not None:
        described = selection.describe()
        label = "its baseline selection " + str(described or "(every session)")
        return fetch(selection), label, ("baseline: sessions selected by " + str(described),)
    loaded = load(gate) if load is not None else None
    if loaded is not None:
        return loaded[0], loaded[1], ()
    return None, given_label, ()


def no_baseline(spec: GateSpec) -> GateError:
    """The error of a gate that needs a baseline and was given none."""
    from pytest_atlas.errors import GateError

    return GateError(
        f"{spec.kind} gate {spec.name!r} has no baseline",
        hint="pass --atlas-baseline PATH (written by --atlas-save-baseline from a run you "
        "trust) or declare baseline = { ...selection... } in the gate",
    )


def interval(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    return f"[{low:.3f}, {high:.3f}]"


def missing_note(series: Series) -> str:
    note = f"; {series.missing} session(s) without a usable score left out" if series.missing else ""
    if series.uncertain:
        note += f"; {series.uncertain} session(s) whose judges' uncertainty is above max_uncertainty left out"
    return note
