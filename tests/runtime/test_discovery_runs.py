"""discovery_runs as Atlas's own CLI writes them: ``atlas env init`` (source 'discovery') and ``atlas
run`` without a config (source 'runtime') run Atlas's discovery worker on a small project, and the
rows they store validate against the discovery schemas; mutations Atlas never writes are refused.

The CLI runs in a subprocess, as users run it. Two things are set around it, and only these: the
0.1.16 wheel lacks the schema file its storage applies on connect (so the driver passes
``apply_schema_on_connect=False``, the database already has the schema), and ``env init`` would
otherwise ask on the terminal whether to set up a Docker PostgreSQL."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from pytest_atlas import check_database, is_valid, iter_errors

DRIVER = """
import functools, sys
import atlas.cli.env as env
import atlas.cli.persistence as persistence
persistence.StorageConfig = functools.partial(persistence.StorageConfig, apply_schema_on_connect=False)
env._setup_storage_if_needed = lambda interactive=True: None
from atlas.cli.main import main
sys.exit(main())
"""

ENVIRONMENT = """
class RefundEnvironment:
    def __init__(self):
        self.steps = 0

    def reset(self, task=None):
        self.steps = 0
        return {"ticket": 1182, "task": task}

    def step(self, action, submit=False):
        self.steps += 1
        return {"ticket": 1182, "status": "refunded"}, 1.0, self.steps >= 2, {"note": "ok"}

    def close(self):
        pass
"""

# the agent's telemetry: Atlas stores an event's payload as given (`payload or {}`), any JSON value
AGENT = """
class RefundAgent:
    def plan(self, task, observation, *, emit_event=None):
        if emit_event is not None:
            emit_event.emit("checklist", ["look up", "refund"])
            emit_event.emit("thought", "The ticket is eligible.")
            emit_event.emit("attempts", 2)
            emit_event.emit("ready", True)
            emit_event.emit("tool_call", {"tool": "refund"})
            emit_event.emit("empty", None)
        return {"steps": ["look up", "refund"], "deep": {"a": {"b": {"c": 1}}}}

    def act(self, context, *, emit_event=None):
        return ("refund 1182", context.step_index >= 1, {"why": "policy"})

    def summarize(self, context, *, history=None, emit_event=None):
        return "Order 1182 refunded."
"""

# an agent with act() only (Atlas wraps it in its stepwise adapter) and an LLM named in a dict; an
# environment whose observations are a list and a string, with no rewards and text for info
STEPWISE_ENVIRONMENT = """
class QueueEnvironment:
    def reset(self, task=None):
        self.steps = 0
        return ["ticket", 7, {"a": {"b": {"c": {"d": 1}}}}, (1, 2), None]

    def step(self, action):
        self.steps += 1
        return "observation text", None, self.steps >= 2, "info as text"

    def close(self):
        pass
"""

STEPWISE_AGENT = """
class QueueAgent:
    llm = {"provider": "anthropic", "model": "claude-3-5-sonnet"}

    def act(self, observation, emit_event=None):
        return {"action": {"cmd": "next", "args": [1, 2, 3]}, "submit": False, "note": "n"}
"""


def _atlas_cli(driver: Path, dsn: str, *args: str) -> None:
    environ = dict(os.environ, DATABASE_URL=dsn, LITELLM_LOCAL_MODEL_COST_MAP="True")
    for name in ("STORAGE__DATABASE_URL", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        environ.pop(name, None)  # no key: env init selects its targets by heuristics, offline
    done = subprocess.run(
        [sys.executable, str(driver), *args], env=environ, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _project(root: Path, package: str, environment: str, agent: str) -> Path:
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "environment.py").write_text(environment)
    (root / package / "agent.py").write_text(agent)
    return root


def discovery_rows(dsn: str, folder: Path) -> list[tuple[str, Any, Any]]:
    """(source, payload, metadata) of the rows ``atlas env init`` and ``atlas run`` write."""
    driver = folder / "atlas_cli.py"
    driver.write_text(DRIVER)
    project = _project(folder / "refunds", "refund_bot", ENVIRONMENT, AGENT)
    _atlas_cli(driver, dsn, "env", "init", "--path", str(project), "--task", "Refund order 1182")
    _atlas_cli(driver, dsn, "run", "--path", str(project), "--task", "Refund order 1183")
    project = _project(folder / "queue", "queue_bot", STEPWISE_ENVIRONMENT, STEPWISE_AGENT)
    # no summarize(): env init skips its sample run and stores the empty result
    _atlas_cli(driver, dsn, "env", "init", "--path", str(project), "--task", "Work the queue")
    _atlas_cli(driver, dsn, "run", "--path", str(project), "--task", "Work the queue")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT source, payload, metadata FROM discovery_runs ORDER BY id").fetchall()
    return [(str(source), payload, metadata) for source, payload, metadata in rows]


def test_what_atlas_discovery_writes_is_valid(atlas_dsn: str, tmp_path: Path) -> None:
    rows = discovery_rows(atlas_dsn, tmp_path)
    assert [source for source, _, _ in rows] == ["discovery", "runtime", "discovery", "runtime"]
    payloads = [payload["telemetry"]["events"] for _, payload, _ in rows]
    # the agent's payloads are stored as given; a None payload becomes {}
    assert {"checklist": ["look up", "refund"], "thought": "The ticket is eligible.", "empty": {}}.items() <= {
        event["type"]: event["payload"] for event in payloads[0]
    }.items()
    problems = [
        f"{source} {schema}: {violation.format()}"
        for source, payload, metadata in rows
        for schema, document in (("discovery-payload", payload), ("discovery-metadata", metadata))
        for violation in iter_errors(document, schema)
    ]
    assert problems == []
    report = check_database(atlas_dsn)
    assert report.ok, str(report)
    checked = {column.name: column.rows_checked for column in report.columns}
    assert checked["discovery_runs.payload"] == checked["discovery_runs.metadata"] == 4
    assert rows[2][1]["history"] == [] and rows[2][2]["preflight"]["auto_skip"] is True
    stepwise = rows[3][1]
    assert stepwise["plan"]["execution"] == "stepwise"  # Atlas's stepwise adapter planned
    assert stepwise["capabilities"]["llm"] == {"provider": "anthropic", "model": "claude-3-5-sonnet", "source": "dict"}
    assert [step["reward"] for step in stepwise["history"]] == [None, None]
    # what Atlas never writes is refused: each kind of row (env init, run, a stepwise run), mutated
    # (one test: the four CLI runs, ~10 s each, happen once per session, whichever worker runs it)
    for index in (0, 1, 3):
        assert _accepted_mutations(*rows[index]) == [], rows[index][0]


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(document)
    node = mutated
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return mutated


_DELETE = object()

#: (schema, path, value): things Atlas's discovery never writes
MUTATIONS: tuple[tuple[str, tuple[Any, ...], Any], ...] = (
    ("discovery-payload", ("telemetry", "events", 0, "payload"), None),  # `payload or {}`: never null
    ("discovery-payload", ("telemetry", "events", 0, "payload"), []),  # an empty list is stored as {}
    ("discovery-payload", ("telemetry", "events", 0, "payload"), ""),
    ("discovery-payload", ("telemetry", "events", 0, "payload"), 0),
    ("discovery-payload", ("telemetry", "events", 0, "payload"), False),
    ("discovery-payload", ("telemetry", "events", 0, "timestamp"), "1796159698.69"),
    ("discovery-payload", ("telemetry", "events", 0, "origin"), "user"),
    ("discovery-payload", ("telemetry", "events", 0, "extra"), 1),
    ("discovery-payload", ("telemetry", "agent_emitted"), "yes"),
    ("discovery-payload", ("history", 0, "step_index"), 0),
    ("discovery-payload", ("history", 0, "submit"), "false"),
    ("discovery-payload", ("history", 0, "reward"), "1.0"),
    ("discovery-payload", ("reward", "steps"), -1),
    ("discovery-payload", ("reward", "total"), "2.0"),
    ("discovery-payload", ("history",), _DELETE),
    ("discovery-payload", ("final_answer",), 42),
    ("discovery-payload", ("unknown",), 1),  # the worker's result is a closed object
    ("discovery-payload", ("capabilities", "llm", "model"), 4),
    ("discovery-metadata", ("version",), 2),
    ("discovery-metadata", ("telemetry", "events", 0, "payload"), None),
    ("discovery-metadata", ("capabilities",), "self"),
)


def _accepted_mutations(source: str, payload: Any, metadata: Any) -> list[tuple[str, tuple[Any, ...], Any]]:
    """The mutations (of :data:`MUTATIONS`) of one row Atlas wrote that its schemas accept: none should be."""
    accepted = []
    for schema, path, value in MUTATIONS:
        document = payload if schema == "discovery-payload" else metadata
        if schema == "discovery-metadata" and source == "runtime" and path[0] != "capabilities":
            continue  # 'atlas run' stores {capabilities, run_artifact} only
        if is_valid(_set(document, path, value), schema):
            accepted.append((schema, path, value))
    return accepted
