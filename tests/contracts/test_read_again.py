"""A library scan (``check_database``, ``run_checks``, ``run_ranges``) whose connection the server
cuts mid-read reads again, as the plugin's contract items do: the retry lives in the contracts layer."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_atlas import AtlasError, check_database
from pytest_atlas.contracts import has_rows, plan_ranges, resolve_targets, run_ranges
from pytest_atlas.gates import GateSpec, evaluate

from ..gates.gates_seed import insert, session_row
from ..target_cut import cut_right_after_connecting, cut_the_first_waiting_read
from . import fill

Conn = psycopg.Connection[Any]


def test_check_database_reads_a_cut_column_again(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any
) -> None:
    fill.clean_database(atlas_db)
    atlas_db.commit()
    with cut_the_first_waiting_read(atlas_postgres.dsn(atlas_database.name)) as killed:
        report = check_database(atlas_dsn)
    assert killed, "no read was cut: the test proves nothing"
    assert report.ok, report.render()
    assert report.column("sessions.metadata").rows_checked == 3
    assert all(item.problem is None for item in report.items())


def test_a_scan_of_every_range_reads_again(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any
) -> None:
    fill.clean_database(atlas_db)
    atlas_db.commit()
    (column,) = resolve_targets("sessions.metadata", None)
    ranges = plan_ranges(atlas_dsn, [column], None, 1)["sessions"]
    with cut_the_first_waiting_read(atlas_postgres.dsn(atlas_database.name)) as killed:
        reports = run_ranges(atlas_dsn, column, ranges, None)
    assert killed
    assert [report.problem for report in reports] == [None] * len(ranges)
    assert sum(report.rows_checked for report in reports) == 3


def test_on_the_callers_connection_a_cut_is_reported_not_hidden(
    atlas_db: Conn, atlas_postgres: Any, atlas_database: Any, atlas_dsn: str
) -> None:
    """The caller's connection is the caller's: a cut one is not replaced by one of ours."""
    fill.clean_database(atlas_db)
    atlas_db.commit()
    with (
        psycopg.connect(atlas_dsn) as conn,
        cut_the_first_waiting_read(atlas_postgres.dsn(atlas_database.name)) as killed,
    ):
        report = check_database(conn, tables="sessions.metadata")
    assert killed
    assert not report.ok
    assert "terminating connection" in str(report.column("sessions.metadata").problem)


def test_has_rows_is_not_false_because_its_read_was_cut(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any
) -> None:
    """The plugin asks it whether a run had any row to check: a cut read is not "no rows"."""
    fill.clean_database(atlas_db)
    atlas_db.commit()
    columns = resolve_targets(None, None)
    with cut_the_first_waiting_read(atlas_postgres.dsn(atlas_database.name)) as killed:
        found = has_rows(atlas_dsn, columns, [], None)
    assert killed
    assert found


def test_a_gate_on_a_dsn_reads_a_cut_query_again(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any
) -> None:
    """The gates share the one definition (the library call: no plugin involved)."""
    insert(atlas_db, [session_row(0.8 + i / 100, minute=i) for i in range(5)])
    atlas_db.commit()
    spec = GateSpec.build("floor", {"kind": "threshold", "threshold": 0.5})
    with cut_the_first_waiting_read(atlas_postgres.dsn(atlas_database.name)) as killed:
        result = evaluate(spec, atlas_dsn)
    assert killed
    assert result.outcome == "pass", result


def test_a_connection_cut_as_soon_as_it_opened_is_opened_again(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any
) -> None:
    """The first statement of a new target connection (SHOW default_transaction_read_only) failed
    with a bare OperationalError when the server cut the connection before it: never read again."""
    fill.clean_database(atlas_db)
    atlas_db.commit()
    with cut_right_after_connecting(atlas_postgres.dsn(atlas_database.name)) as killed:
        report = check_database(atlas_dsn)
    assert killed, "no connection was cut: the test proves nothing"
    assert report.ok, report.render()
    assert report.column("sessions.metadata").rows_checked == 3


def test_a_gate_whose_connection_is_cut_as_soon_as_it_opened_reads_again(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any
) -> None:
    insert(atlas_db, [session_row(0.8 + i / 100, minute=i) for i in range(5)])
    atlas_db.commit()
    spec = GateSpec.build("floor", {"kind": "threshold", "threshold": 0.5})
    with cut_right_after_connecting(atlas_postgres.dsn(atlas_database.name)) as killed:
        result = evaluate(spec, atlas_dsn)
    assert killed
    assert result.outcome == "pass", result


def test_a_target_that_cuts_every_new_connection_is_a_clear_error(
    atlas_db: Conn, atlas_dsn: str, atlas_postgres: Any, atlas_database: Any, monkeypatch: Any
) -> None:
    """Read again for a while (READ_AGAIN_FOR, shortened here), then a message, not a traceback."""
    from pytest_atlas.db import _target

    monkeypatch.setattr(_target, "READ_AGAIN_FOR", 0.5)
    fill.clean_database(atlas_db)
    atlas_db.commit()
    with (
        cut_right_after_connecting(atlas_postgres.dsn(atlas_database.name), times=1000) as killed,
        pytest.raises(AtlasError) as raised,
    ):
        check_database(atlas_dsn)
    assert len(killed) >= 2, "it was not read again"
    message = str(raised.value)
    assert "the connection was cut as soon as it was opened" in message
    assert "terminating connection" in message
    assert "run again once it is back" in message
