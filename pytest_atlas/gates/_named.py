"""Evidence for everything a gate names: every learning key of its ``learning_key`` and every task of
its ``task`` must be among the sessions it read. A name it read nothing of (a typo, a key the
harness stopped writing) is a failing row naming it, and the closest value the database holds;
otherwise the gate would pass on the other names alone.

A kind whose rows are one per learning key (``GateKind.keyed``, with ``by_key``) says by its rows
which keys it read; otherwise one query over the gate's selection does (for a kind that reads
scores, over its scored sessions, the newest ``last`` of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psycopg import sql

from pytest_atlas._arguments import did_you_mean
from pytest_atlas._outcome import Outcome
from pytest_atlas.gates._result import NO_SESSIONS, KeyResult
from pytest_atlas.gates._sql import filters, run, scored

if TYPE_CHECKING:
    import psycopg

    from pytest_atlas.gates._kind import GateKind
    from pytest_atlas.gates._spec import GateSpec

__all__ = ["unread_names"]

#: the distinct values of the database a close name is looked for among
CANDIDATES = 5000

#: the selection options that name what a gate reads: what they are called and their column
_NAMES = {
    "learning_key": ("learning key", sql.SQL("s.metadata ->> 'learning_key'")),
    "task": ("task", sql.SQL("s.task")),
}


def unread_names(
    conn: psycopg.Connection[Any], spec: GateSpec, kind: GateKind[Any], rows: Sequence[KeyResult]
) -> list[KeyResult]:
    """A failing row for each learning key and task ``spec`` names that the gate read no usable
    session of. None when the gate read nothing at all (it fails on its own: no session matched)."""
    named = {name: tuple(dict.fromkeys(getattr(spec.selection, name) or ())) for name in _NAMES}
    if not rows or not any(named.values()):
        return []
    if spec.by_key and kind.keyed and not named["task"]:
        read = {"learning_key": {row.learning_key for row in rows}}
    else:
        read = _read(conn, spec, kind, named)
    out: list[KeyResult] = []
    for name, values in named.items():
        unread = [value for value in values if value not in read.get(name, set())]
        if unread:
            closest = _closest(conn, name, unread, set(values))
            hidden = _all_quarantined(conn, name, unread) if spec.selection.excludes_quarantined() else {}
            # what counts quarantined sessions: a review_status list leaves them out on its own
            counts = (
                "set include_quarantined = true"
                if spec.selection.review_status is None
                else "add 'quarantined' to review_status"
            )
            out += [_row(name, value, closest.get(value), hidden.get(value), counts) for value in unread]
    return out


def _all_quarantined(conn: psycopg.Connection[Any], name: str, unread: list[str]) -> dict[str, int]:
    """Of the unread names, those whose every session is quarantined, with their sessions: the
    name is right, what leaves it out is the quarantine."""
    column = _NAMES[name][1]
    query = sql.SQL(
        "SELECT {column}, count(*) FROM sessions AS s WHERE {column} = ANY(%(names)s) GROUP BY 1 "
        "HAVING bool_and(s.review_status = 'quarantined')"
    ).format(column=column)
    return {value: int(count) for value, count in run(conn, query, {"names": unread})}


def _read(
    conn: psycopg.Connection[Any], spec: GateSpec, kind: GateKind[Any], named: dict[str, tuple[str, ...]]
) -> dict[str, set[str]]:
    """The named learning keys and tasks among the sessions the gate reads."""
    params: dict[str, Any] = {}
    columns = sql.SQL(", ").join(
        sql.SQL("array_agg(DISTINCT {})").format(column) if named[name] else sql.SQL("NULL::text[]")
        for name, (_, column) in _NAMES.items()
    )
    if kind.scored:  # the scored sessions, the newest ``last`` (per key with by_key)
        query = scored(spec.selection, spec.by_key, params) + sql.SQL(
            "SELECT {columns} FROM scored AS m JOIN sessions AS s ON s.id = m.id"
        ).format(columns=columns)
    else:
        query = sql.SQL("SELECT {columns} FROM sessions AS s WHERE {where}").format(
            columns=columns, where=filters(spec.selection, params)
        )
    ((keys, tasks),) = run(conn, query, params)
    return {"learning_key": set(keys or ()), "task": set(tasks or ())}


def _closest(conn: psycopg.Connection[Any], name: str, unread: list[str], named: set[str]) -> dict[str, str]:
    """For each unread name, ``" (did you mean 'x'?)"`` for the most similar value of ``name`` the
    database holds (among the first :data:`CANDIDATES` distinct ones, the names the gate gives left
    out), if one is close."""
    column = _NAMES[name][1]
    query = sql.SQL("SELECT DISTINCT {column} FROM sessions AS s WHERE {column} IS NOT NULL LIMIT %(limit)s").format(
        column=column
    )
    existing = [value for (value,) in run(conn, query, {"limit": CANDIDATES}) if value not in named]
    return {value: suggestion for value in unread if (suggestion := did_you_mean(value, existing))}


def _row(name: str, value: str, closest: str | None, quarantined: int | None, counts: str) -> KeyResult:
    """The failing row of an unread name: with ``quarantined`` (its sessions, all quarantined) the
    remedy is ``counts`` (what makes the gate count them), else the name."""
    what = _NAMES[name][0]
    hint = closest or ""
    remedy = "fix the name"
    if quarantined:
        hint = f": its {quarantined} session(s) are all quarantined"
        remedy = f"{counts} to count them"
    return KeyResult(
        value if name == "learning_key" else f"{what}: {value}",
        0,
        NO_SESSIONS,
        None,
        "-",
        "-",
        Outcome.FAIL,
        f"{what} {value!r} is named in {name}, but the gate read no usable session of it{hint}: {remedy}, "
        f"or leave it out of {name}",
    )
