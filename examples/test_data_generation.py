"""Data generation in a harness's test suite: factories for fixtures, strategies for properties.

The code under test is a small review queue a harness might have: it reads Atlas's ``sessions``
table and lists, per learning key, the sessions waiting for review and their mean reward.
"""

from __future__ import annotations

from statistics import fmean

from hypothesis import HealthCheck, given, settings

from pytest_atlas import insert_graphs, rollback
from pytest_atlas.strategies import reward_history, session_graphs


def review_queue(conn) -> dict[str, dict]:
    """Code under test: pending sessions and mean score per learning key."""
    rows = conn.execute(
        "SELECT metadata->>'learning_key', count(*) FILTER (WHERE review_status = 'pending'),"
        "       avg((reward_stats->>'score')::float)"
        " FROM sessions GROUP BY 1"
    ).fetchall()
    return {key: {"pending": pending, "mean_score": mean} for key, pending, mean in rows}


def test_queue_counts_pending_sessions(atlas_factory):
    """Factories: realistic sessions in one line each, inserted with COPY and committed."""
    atlas_factory.sessions(20, learning_key="checkout", review_status="approved")
    atlas_factory.sessions(3, learning_key="checkout", drifting=True, review_status="pending")
    atlas_factory.sessions(5, learning_key="billing", failed=True)

    queue = review_queue(atlas_factory.conn)

    assert queue["checkout"]["pending"] == 3
    assert queue["billing"] == {"pending": 5, "mean_score": None}  # failed runs have no reward


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=session_graphs())
def test_queue_handles_any_session(atlas_tx, graph):
    """Strategies with a database: each example is inserted inside a savepoint that is rolled back."""
    with rollback(atlas_tx):
        insert_graphs(atlas_tx, [graph])
        queue = review_queue(atlas_tx)
        [entry] = queue.values()
        assert entry["pending"] == (1 if graph.session["review_status"] == "pending" else 0)
        assert entry["mean_score"] == graph.score


def test_slow_decline_is_invisible_to_atlas_but_not_to_a_window(atlas_db):
    """Reward scenarios: Atlas's per-session drift check stays silent on a gradual decline."""
    history = reward_history("gradual_decline", sessions=60, seed=1)
    insert_graphs(atlas_db, history.graphs)

    assert history.alert_indices == ()  # no session was ever flagged
    assert fmean(history.after) < fmean(history.before) - 0.05  # yet the level dropped
    assert review_queue(atlas_db)[history.learning_key]["pending"] == 0
