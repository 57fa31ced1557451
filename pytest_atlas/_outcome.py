"""The outcome vocabulary of every verdict pytest-atlas gives (gates, contracts, reward assertions)
and the exit statuses a run ends with. Light on purpose: no numpy, no scipy, no pytest.

A check ends in one of four outcomes:

* ``pass``: the data show no problem, and they could have shown one;
* ``fail``: the data show a problem;
* ``inconclusive``: there is data on every side the check needs, but too little (or too noisy) to
  decide; the result says what it could have detected;
* ``error``: the check could not be evaluated (database unreachable, query failed, broken or empty
  baseline).

A declared gate that never ran gets one of two more, so that a report lists every declared gate
and its counts add up (rows of a gate and the statistics never take them):

* ``not-run``: the run stopped before it (``-x``, ``--maxfail``, an interrupt, a crashed worker):
  blocking, like ``error``;
* ``deselected``: the run's selection left it out (``-k``, ``-m``, ``--deselect``): not blocking,
  but a run with one is never reported as all gates passing.

A run's exit status is the most serious blocking outcome: any failure (of a check or of any other
test) gives 1, else an error (or a gate that did not run) 7, else an inconclusive check that is not
allowed 6, else pytest's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_INCONCLUSIVE",
    "OUTCOMES",
    "Outcome",
    "exit_status",
    "worst_outcome",
]


class Outcome(str, Enum):
    """The outcome of a gate, a contract check or one row of either."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    NOT_RUN = "not-run"
    DESELECTED = "deselected"

    def __str__(self) -> str:
        return self.value


#: the outcome values, in the order reports list them
OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)

#: exit status of a run in which a check (or any test) failed: pytest's own
EXIT_FAILED = 1
#: exit status when nothing failed but a check could not be evaluated
EXIT_ERROR = 7
#: exit status when nothing failed or errored but a check was inconclusive (and that is not allowed)
EXIT_INCONCLUSIVE = 6

_SEVERITY = {
    Outcome.PASS: 0,
    Outcome.DESELECTED: 0,
    Outcome.INCONCLUSIVE: 1,
    Outcome.NOT_RUN: 2,
    Outcome.ERROR: 2,
    Outcome.FAIL: 3,
}


def worst_outcome(outcomes: Iterable[Outcome]) -> Outcome:
    """fail > error, not-run > inconclusive > pass, deselected (pass for no outcome at all)."""
    return max(outcomes, key=_SEVERITY.__getitem__, default=Outcome.PASS)


def exit_status(pytest_status: int, blocking: Iterable[Outcome], *, other_failures: bool = False) -> int:
    """The exit status of a run: pytest's own status, refined by the checks' blocking outcomes.

    ``blocking`` holds the outcome of every check that should stop a release (failures, errors,
    and inconclusive results that are not allowed); ``other_failures`` says whether a test that is
    not a check failed. Statuses other than 0 and 1 (interrupted, usage error, ...) are kept.
    """
    if pytest_status not in (0, EXIT_FAILED):
        return pytest_status
    outcomes = set(blocking)
    if other_failures or Outcome.FAIL in outcomes:
        return EXIT_FAILED
    if Outcome.ERROR in outcomes or Outcome.NOT_RUN in outcomes:
        return EXIT_ERROR
    if Outcome.INCONCLUSIVE in outcomes:
        return EXIT_INCONCLUSIVE
    return pytest_status
