"""``AtlasRuntime(dsn)`` takes a DSN in either form libpq reads: Atlas's storage uses asyncpg, which
reads URLs only, so a ``key=value`` DSN is handed to Atlas as the equivalent ``postgresql://`` URL;
one with a parameter asyncpg cannot take is refused when the runtime is made, by name."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_atlas.errors import InvalidArgument
from pytest_atlas.runtime import AtlasRuntime

from .helpers import session


def _pairs(dsn: str, **changes: str) -> str:
    """``dsn`` (a URL) as libpq ``key=value`` pairs, with ``changes``."""
    return make_conninfo("", **{**conninfo_to_dict(dsn), **changes})


def test_a_key_value_dsn_runs_atlas(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    pairs = _pairs(atlas_dsn)
    assert "://" not in pairs and "host=" in pairs
    runtime = AtlasRuntime(pairs)
    sid = runtime.run("Written through pairs", score=0.4)
    coached = runtime.run("Written through pairs", mode="coach")  # the runtime's own reads (psycopg) too
    first, second = session(atlas_db, sid), session(atlas_db, coached)
    assert (first["status"], first["task"]) == ("succeeded", "Written through pairs")
    assert first["reward_stats"]["score"] == pytest.approx(0.4)
    assert second["metadata"]["execution_mode"] == "coach"
    assert runtime.dsn == pairs  # the connection string as given


@pytest.mark.parametrize(
    ("pairs", "names", "hint"),
    [
        ("service=atlas user=me password=s3cret-pw", "service=", "write the service's parameters (host, port,"),
        ("hostaddr=127.0.0.1 port=1 password='s3cret-pw'", "hostaddr=", "give the address as host="),
        ("host=/tmp keepalives=1 password=s3cret-pw", "keepalives=", "remove keepalives="),
        (
            "host=/tmp sslsni=1 service=x password=s3cret-pw",
            "service=, sslsni=",
            "into the DSN instead of service=; remove sslsni=",
        ),
    ],
)
def test_a_parameter_asyncpg_cannot_take_is_refused_by_name(pairs: str, names: str, hint: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        AtlasRuntime(pairs)  # refused when made: no run, no connection
    message = str(info.value)
    assert message.startswith(f"AtlasRuntime(): the DSN's {names} cannot be handed to asyncpg"), message
    assert "Atlas's storage" in message and hint in message, message
    assert "s3cret-pw" not in message


def test_pairs_libpq_cannot_parse_are_refused_without_the_password() -> None:
    with pytest.raises(InvalidArgument) as info:
        AtlasRuntime("host=/tmp password='s3cret-pw")  # an unterminated quote
    message = str(info.value)
    assert message.startswith("AtlasRuntime(): the DSN is not a connection string libpq can parse"), message
    assert "how to fix: use a URL such as postgresql://" in message and "s3cret" not in message, message


@pytest.mark.parametrize(
    "pairs",
    [
        r"host='/tmp/a folder' port=5433 dbname='my db' user='o\'brien' password='p@ss/w:rd +%? #\\'",
        "host=db.example port=6543 dbname=atlas user=ci sslmode=require application_name='my run'",
        "host='/run/pg,db1' port=5432,5433 dbname=x user=u passfile='/tmp/pass file' connect_timeout=10",
        "host=::1 port=5432 dbname=d",
        "dbname=onlythis",
    ],
)
def test_the_url_atlas_is_given_is_the_same_connection(pairs: str) -> None:
    """Every parameter, percent-encoded, reads back (by libpq) as it was given (connect_timeout, a
    wait of libpq's only, is left out: asyncpg has its own)."""
    url = AtlasRuntime(pairs)._storage_dsn.reveal()
    assert url.startswith("postgresql://") and " " not in url and "+" not in url
    given = {key: value for key, value in conninfo_to_dict(pairs).items() if key != "connect_timeout"}
    assert conninfo_to_dict(url) == given


def test_a_url_is_handed_over_as_it_is(atlas_dsn: str) -> None:
    assert AtlasRuntime(atlas_dsn)._storage_dsn.reveal() == atlas_dsn


REFUSED_PAIRS = """
from pytest_atlas import AtlasRuntime

DSN = "host=127.0.0.1 port=1 service=atlas password=s3cret-pw"


def test_refused():
    AtlasRuntime(DSN.replace("s3cret", "s3" + "cret"))
"""


def test_a_refused_dsn_shows_no_password_in_any_frame(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(REFUSED_PAIRS)
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--tb=long", "--showlocals")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*InvalidArgument: AtlasRuntime(): the DSN's service= cannot be handed to asyncpg*"])
    shown = [line for line in result.outlines if "s3cret-pw" in line and 'DSN = "host' not in line]
    assert shown == []


PAIRS_WITH_A_PASSWORD = """
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from pytest_atlas import AtlasRuntime


def test_pairs_with_a_password(atlas_dsn, atlas_db, atlas_postgres):
    password = open(atlas_postgres.passfile).read().strip().rsplit(":", 1)[1]
    params = {k: v for k, v in conninfo_to_dict(atlas_dsn).items() if k != "passfile"}
    pairs = make_conninfo("", **params, password=password)  # as a user's own DSN for the server
    assert "://" not in pairs and password in pairs
    runtime = AtlasRuntime(pairs)
    sid = runtime.run("Through TCP with a password")
    with atlas_db.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT status, task FROM sessions WHERE id = %s", [sid]).fetchone()
    assert row == {"status": "succeeded", "task": "Through TCP with a password"}
    assert password not in repr(runtime) and password not in str(vars(runtime))
"""


def test_pairs_with_a_password_reach_atlas_over_tcp(pytester: pytest.Pytester) -> None:
    """The password of a ``key=value`` DSN reaches asyncpg (percent-encoded in the URL's userinfo)."""
    pytester.makepyfile(PAIRS_WITH_A_PASSWORD)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--atlas-tcp")
    result.assert_outcomes(passed=1)


def test_a_url_with_connect_timeout_runs_atlas(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    """``connect_timeout`` (which atlas_dsn carries when --atlas-dsn has it) is libpq's: asyncpg would
    send it to the server as a setting, which the server refuses. It is left out of what Atlas gets."""
    url = atlas_dsn + ("&" if "?" in atlas_dsn else "?") + "connect_timeout=10"
    sid = AtlasRuntime(url).run("Written with a timeout")
    assert session(atlas_db, sid)["status"] == "succeeded"
