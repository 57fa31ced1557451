"""Generated drift documents are Atlas's assessment (pytest_atlas.stats, itself tested against Atlas's
code in tests/stats) plus the ``message`` Atlas adds when it stores an alert."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_atlas.domain import drift_document
from pytest_atlas.stats import assess_drift, reward_baseline

numbers = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
stats_documents = st.fixed_dictionaries(
    {"score": numbers | st.none()},
    optional={
        "score_mean": numbers | st.none(),  # present-but-null suppresses the fallback to score
        "uncertainty_mean": numbers | st.none(),
        "best_uncertainty": numbers | st.none(),
        "min_uncertainty": numbers,  # the alias Atlas's readers accept
        "timestamp": st.just("2025-01-01T00:00:00+00:00"),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(stats_documents, min_size=1, max_size=12),
    threshold=st.floats(0.0, 4.0),
    min_baseline=st.integers(0, 8),
    window=st.integers(1, 60),
)
def test_document_is_the_assessment_plus_message_on_alert(
    rows: list[dict[str, Any]], threshold: float, min_baseline: int, window: int
) -> None:
    baseline = reward_baseline(rows, window)
    expected = assess_drift(
        rows[0], baseline, threshold=threshold, min_baseline=min_baseline, window=window, learning_key="k"
    )
    assert expected is not None
    document = drift_document(
        rows[0], baseline, threshold=threshold, window=window, min_baseline=min_baseline, learning_key="k"
    )
    if document["alert"]:
        assert document.pop("message") == f"Reward drift alert ({document['reason']})"
    else:
        assert "message" not in document
    assert document == expected


def test_importing_the_strategies_does_not_import_scipy() -> None:
    import subprocess
    import sys

    code = "import sys, pytest_atlas.strategies; print('scipy' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
