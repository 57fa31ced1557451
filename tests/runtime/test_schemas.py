"""The JSON Schemas against what Atlas's real runtime writes: every row it writes along every path
validates with zero errors, and targeted mutations of those rows are caught."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from pytest_atlas import ATLAS_COLUMNS, check_database, is_valid, iter_errors
from pytest_atlas.strategies import MUTATIONS, Mutation
from pytest_atlas.strategies._invalid import _apply as apply_mutation

from .corpus import corpus_rows, write_corpus
from .helpers import everything

#: JSON columns the runtime writes (discovery_runs come from `atlas env init`, not from a run)
RUNTIME_COLUMNS = {
    column: schema for column, schema in ATLAS_COLUMNS.items() if not column.startswith("discovery_runs")
}


def documents(rows: dict[str, list[dict[str, Any]]]) -> Iterator[tuple[str, str, Any]]:
    for column, schema in RUNTIME_COLUMNS.items():
        table, _, name = column.partition(".")
        for row in rows[table]:
            if row[name] is not None:
                yield column, schema, row[name]


def schema_problems(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every schema error in the JSON documents of ``rows``, one line each."""
    return [
        f"{column} ({schema}): {violation.format()}"
        for column, schema, document in documents(rows)
        for violation in iter_errors(document, schema)
    ]


def valid_rows(dsn: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the database, after checking that each JSON document in it has no schema error
    and that the contract check passes on the whole database."""
    with psycopg.connect(dsn) as conn:
        rows = everything(conn)
    assert schema_problems(rows) == []
    report = check_database(dsn)
    assert report.ok, str(report)
    return rows


def test_the_contract_check_passes_on_what_atlas_writes(atlas_dsn: str, atlas_db: psycopg.Connection[Any]) -> None:
    write_corpus(atlas_dsn)
    report = check_database(atlas_dsn)
    assert report.ok, str(report)
    checked = {column.name: column.rows_checked for column in report.columns}
    assert all(checked[column] > 0 for column in RUNTIME_COLUMNS), checked


def test_every_document_atlas_writes_is_valid(atlas_dsn: str) -> None:
    rows = corpus_rows(atlas_dsn)
    assert schema_problems(rows) == []
    assert sum(1 for _ in documents(rows)) > 600


# --- targeted mutations ---------------------------------------------------------------------------


def _locations(node: Any, path: tuple[str, ...], where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Concrete paths (with list indices) matching ``path`` (``*``: any item) in ``node``."""
    if not path:
        yield where
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, list):
            for index, item in enumerate(node[:2]):
                yield from _locations(item, rest, (*where, index))
    elif isinstance(node, dict) and head in node:
        yield from _locations(node[head], rest, (*where, head))


def _mutate(document: Any, where: tuple[Any, ...], kind: str) -> Any:
    """The strategies' own near-miss mutation, applied to an Atlas-written document."""
    mutated, _ = apply_mutation(document, list(where), Mutation(tuple(str(p) for p in where), kind, kind))
    return mutated


#: mutations of what the runtime writes that the strategy rules do not cover
RUNTIME_MUTATIONS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "session-metadata": (
        (("review", "default_export_statuses"), "type"),
        (("reward_audit", "*", "temperature"), "type"),
        (("learning_usage", "session", "failure_flag"), "type"),
        (("adaptive_summary", "mode_history"), "type"),
        (("triage_dossier",), "additional"),
        (("learning_history", "entries"), "type"),
        (("applied_student_learning", "char_count"), "type"),
    ),
    "reward-audit": ((("*", "temperature"), "type"), (("*", "response"), "type")),
    "session-reward": ((("judges", "*", "samples", "*", "uncertainty"), "type"), (("raw", "samples"), "type")),
    "step-metadata": ((("runtime", "timings_ms"), "type"), (("structured_output",), "type")),
    "trajectory-event": ((("function_ancestry",), "additional"), (("payload", "data", "input"), "required")),
    "learning-registry-metadata": (
        (("playbook_entries", "*", "impact", "sessions_observed"), "type"),
        (("playbook_entries", "*", "provenance", "status", "lifecycle"), "enum"),
        (("last_evaluation", "summary", "pass_rate"), "type"),
    ),
    "plan": ((("steps", "*", "description"), "type"),),
    "step-evaluation": ((("validation",), "type"),),
    "reward-stats": ((("uncertainty_mean",), "type"), (("best_uncertainty",), "type")),
}


def mutations() -> Iterator[tuple[str, tuple[str, ...], str]]:
    for schema, rules in MUTATIONS.items():
        for rule in rules:
            yield schema, rule.path, rule.kind
    for schema, extra in RUNTIME_MUTATIONS.items():
        for path, kind in extra:
            yield schema, path, kind


def test_targeted_mutations_of_atlas_rows_are_caught(atlas_dsn: str) -> None:
    rows = corpus_rows(atlas_dsn)
    by_schema: dict[str, list[Any]] = {}
    for _, schema, document in documents(rows):
        by_schema.setdefault(schema, []).append(document)
    applied = 0
    missed: list[str] = []
    untargeted: list[str] = []
    for schema, path, kind in mutations():
        if schema not in by_schema:
            continue  # discovery payloads and export lines are not written by a run
        hits = 0
        for document in by_schema[schema]:
            for where in _locations(document, path):
                hits += 1
                if is_valid(_mutate(document, where, kind), schema):
                    missed.append(f"{schema} {kind} at {where}")
        applied += hits
        if hits == 0:
            untargeted.append(f"{schema} {kind} {'.'.join(path) or '$'}")
    assert missed == []
    assert applied > 1000
    assert untargeted == []  # every rule finds its target in what Atlas writes
