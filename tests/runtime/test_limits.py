"""What the runtime says when it cannot run Atlas, and what it never does (load Atlas early, reach the network)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import socket
from typing import Any

import pytest

from pytest_atlas.errors import AtlasRuntimeError
from pytest_atlas.runtime import SUPPORTED_VERSIONS, AtlasRuntime, atlas_version

from .conftest import NetworkGuard

_REAL_VERSION = importlib.metadata.version
_REAL_FIND_SPEC = importlib.util.find_spec


def test_the_supported_version_is_the_installed_one() -> None:
    assert atlas_version() == "0.1.16" and SUPPORTED_VERSIONS == ("0.1.16",)


def test_missing_arc_atlas_names_the_extra(monkeypatch: pytest.MonkeyPatch, atlas_dsn: str) -> None:
    def version(name: str) -> str:
        if name == "arc-atlas":
            raise importlib.metadata.PackageNotFoundError(name)
        return _REAL_VERSION(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(AtlasRuntimeError) as info:
        AtlasRuntime(atlas_dsn)
    assert str(info.value) == (
        "the Atlas runtime needs arc-atlas, which is not installed\n"
        '  how to fix: pip install "pytest-atlas[atlas]" (arc-atlas==0.1.16 and asyncpg)'
    )


def test_another_atlas_version_is_refused_up_front(monkeypatch: pytest.MonkeyPatch, atlas_dsn: str) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.1.17" if name == "arc-atlas" else "1")
    with pytest.raises(AtlasRuntimeError, match=r"arc-atlas 0\.1\.17 is installed; .* built for arc-atlas 0\.1\.16"):
        AtlasRuntime(atlas_dsn)


def test_missing_asyncpg(monkeypatch: pytest.MonkeyPatch, atlas_dsn: str) -> None:
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else _REAL_FIND_SPEC(name, *a)
    )
    with pytest.raises(AtlasRuntimeError, match="needs asyncpg"):
        AtlasRuntime(atlas_dsn)


def test_the_fixture_says_which_extra_to_install(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import importlib.metadata

        import pytest

        _real = importlib.metadata.version

        def _version(name):
            if name == "arc-atlas":
                raise importlib.metadata.PackageNotFoundError(name)
            return _real(name)

        @pytest.fixture(autouse=True)
        def no_arc_atlas(monkeypatch):
            monkeypatch.setattr(importlib.metadata, "version", _version)
        """
    )
    pytester.makepyfile("def test_it(atlas_runtime):\n    atlas_runtime.run('never')\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-atlas: the Atlas runtime needs arc-atlas, which is not installed",
            '*how to fix: pip install "pytest-atlas?atlas?" (arc-atlas==0.1.16 and asyncpg)',
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_atlas_is_not_imported_when_pytest_starts(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys

        def pytest_collection_finish(session):
            loaded = sorted(m for m in ("atlas", "litellm", "langgraph", "asyncpg") if m in sys.modules)
            print("LOADED", loaded)
        """
    )
    pytester.makepyfile("def test_it(atlas_runtime):\n    pass\n")
    # a fresh interpreter, collecting a test that asks for the fixture
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-s", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert "LOADED []" in result.stdout.lines
    assert "test_atlas_is_not_imported_when_pytest_starts.py::test_it" in result.stdout.lines


def test_the_guard_catches_what_a_provider_call_does(network_guard: NetworkGuard) -> None:
    # the test guard itself must be able to fail: a connection to a provider-like address is blocked
    with pytest.raises(OSError, match="blocked by the test guard"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with pytest.raises(OSError, match="blocked by the test guard"):
        socket.getaddrinfo("api.openai.com", 443)
    assert network_guard.blocked == ["connect '203.0.113.7'", "name lookup 'api.openai.com'"]
    network_guard.blocked.clear()


def test_no_network_with_tracing_and_keys_in_the_environment(
    atlas_runtime: AtlasRuntime, monkeypatch: pytest.MonkeyPatch, network_guard: NetworkGuard
) -> None:
    # what a developer's shell may have: LangSmith tracing on, provider keys, litellm's online cost map
    for name, value in {
        "LANGSMITH_TRACING": "true",
        "LANGCHAIN_TRACING_V2": "true",
        "LANGSMITH_API_KEY": "lsv2-not-a-real-key",
        "OPENAI_API_KEY": "sk-not-a-real-key",
        "XAI_API_KEY": "xai-not-a-real-key",
        "LITELLM_LOCAL_MODEL_COST_MAP": "False",
    }.items():
        monkeypatch.setenv(name, value)
    atlas_runtime.run("Offline, whatever the shell says", mode="coach", uncertainty=0.8)
    atlas_runtime.run("Offline, whatever the shell says", guidance="More detail.")
    assert network_guard.blocked == []
    keys = {call.model for call in atlas_runtime.last.calls}
    assert keys and all(model.startswith("pytest-atlas/") for model in keys)


def test_a_real_key_is_never_handed_to_a_client(atlas_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_atlas.runtime import _atlas

    keys: list[Any] = []
    real_answer = _atlas._answer

    def answer(responder: Any, frame: Any, request: Any) -> Any:
        keys.append(request.get("api_key"))
        return real_answer(responder, frame, request)

    monkeypatch.setattr(_atlas, "_answer", answer)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    runtime = AtlasRuntime(
        atlas_dsn,
        config={"teacher": {"llm": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}}},
    )
    runtime.run("Whose key?")
    assert runtime.last.calls_of("teacher")[0].model == "gpt-4o-mini"
    assert len(keys) == len(runtime.last.calls) and set(keys) == {"pytest-atlas-scripted-llm-no-network"}


def test_an_unreachable_database_is_said_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = AtlasRuntime("postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere")
    with pytest.raises(AtlasRuntimeError) as info:
        runtime.run("Nowhere to write")
    message = str(info.value)
    assert message.startswith("Atlas did not create a session for 'Nowhere to write': ")
    assert "s3cret-pw" not in message and "user and password right" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_rejected_config_never_shows_the_password() -> None:
    with pytest.raises(AtlasRuntimeError) as info:
        AtlasRuntime("postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere", config={"storage": {"min_connections": 0}})
    assert "Atlas rejects the run's configuration" in str(info.value) and "s3cret-pw" not in str(info.value)


def test_the_validated_configuration_holds_no_password() -> None:
    # the runtime keeps Atlas's parsed configuration for the learning key: a frame that shows it
    # (--showlocals in learning_key_for, or in Atlas's own code) must not show the password
    runtime = AtlasRuntime("postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere")
    assert "s3cret-pw" not in repr(runtime._atlas_config) and "s3cret-pw" not in str(vars(runtime))


RUNTIME_FAILURES = """
from pytest_atlas import AtlasRuntime

DSN = "postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere"


def test_unreachable():
    AtlasRuntime(DSN.replace("s3cret", "s3" + "cret")).run("Nowhere to write")


def test_rejected_config():
    AtlasRuntime(DSN.replace("s3cret", "s3" + "cret"), config={"storage": {"min_connections": 0}})
"""


@pytest.mark.parametrize("level", [["--tb=long", "--showlocals"], ["--full-trace", "--showlocals"], ["--tb=native"]])
def test_a_runtime_failure_shows_no_password_in_any_frame(pytester: pytest.Pytester, level: list[str]) -> None:
    # the test's source names the password once (DSN = ...); each frame shown must not
    pytester.makepyfile(RUNTIME_FAILURES)
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", *level)
    result.assert_outcomes(failed=2)
    shown = [line for line in result.outlines if "s3cret-pw" in line and 'DSN = "postgresql' not in line]
    assert shown == []


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere", "host=127.0.0.1 port=1 user=nobody password='s3cret-pw'"],
)
def test_a_rejected_config_that_quotes_the_password_never_shows_it(dsn: str) -> None:
    # Atlas (pydantic) quotes the value it refuses: here the password, put where a number belongs
    with pytest.raises(AtlasRuntimeError) as info:
        AtlasRuntime(dsn, config={"storage": {"min_connections": "s3cret-pw"}})
    message = str(info.value)
    assert "Atlas rejects the run's configuration" in message and "min_connections" in message, message
    assert "s3cret-pw" not in message, message


FAILED_RUN_WITH_A_PASSWORD = """
import pytest
from pytest_atlas import AtlasRuntime
from pytest_atlas.errors import AtlasRuntimeError


def test_a_failed_run(atlas_dsn, atlas_postgres):
    password = open(atlas_postgres.passfile).read().strip().rsplit(":", 1)[1]
    # the URL with the password in it (and no passfile): as a user's own DSN for the server
    dsn = atlas_dsn.split("?", 1)[0].replace("postgres@", f"postgres:{password}@", 1)
    assert password in dsn and "passfile" not in dsn

    def agent(prompt, metadata=None):
        raise RuntimeError(f"the agent was handed {password}")

    with pytest.raises(AtlasRuntimeError) as info:
        AtlasRuntime(dsn, agent=agent).run("Leak nothing")
    message = str(info.value)
    assert "the agent was handed ***" in message, message
    assert password not in message, message
"""


def test_a_failed_run_s_message_shows_no_form_of_the_password(pytester: pytest.Pytester) -> None:
    """An agent's error quoting the runtime's password alone (not the whole DSN, which is what the
    runtime redacted from Atlas's message): every form of the password is redacted."""
    pytester.makepyfile(FAILED_RUN_WITH_A_PASSWORD)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--atlas-tcp")
    result.assert_outcomes(passed=1)
