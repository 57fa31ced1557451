"""The run's secrets are scrubbed from every report, whoever put them there.

The plugin redacts what it says itself, but a test that fails may quote a secret the plugin knows:
a psycopg error raised in the user's code with the ``--atlas-dsn`` DSN in its message, a fixture
value shown by ``--showlocals``, a captured ``print``. Before any reporter sees a report (the
terminal, JUnit XML, pytest-xdist's controller, the plugin's own JSON and HTML reports, which read
the reports' user properties), every text in it loses the passwords this process knows
(:func:`pytest_atlas._dsn.known_secrets`: those of the configured DSNs, of a DSN given to the public
API, ``$PGPASSWORD``, the password a TCP server of the run was given). Nothing else in a test's text
changes (a URL followed by an address further on stays as written), and the plugin's own result
properties, built from redacted values, are left alone: a password that is also a word they hold
(``pass``, ``fail``) would otherwise change a verdict. The same goes for internal errors and
warnings, the values JUnit XML keeps apart from the reports (``record_testsuite_property``,
``record_xml_attribute``), a parametrized test's id, renamed as the test is made, the message and
traceback of what ends the run (``pytest.exit``, ``KeyboardInterrupt``) and a conftest that fails
to load before the run (shown as a usage error, scrubbed). What a test
writes to the terminal itself (``-s``) never passes through a report: it cannot be scrubbed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import os
import sys
import warnings
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_atlas._dsn import hide_dsn_passwords
from pytest_atlas._dsn import scrub as _scrub_text
from pytest_atlas._properties import RESULT_PROPERTY

__all__ = ["own_message", "scrub_value", "usage_error"]

#: how deep a report's objects are walked (a longrepr is a few levels deep)
_DEPTH = 12

#: the user properties the plugin writes itself, from redacted values (a database's DSN, a result)
_OWN_PROPERTIES = frozenset({RESULT_PROPERTY, "atlas_database"})


def scrub(text: str) -> str:
    """``text`` without the secrets this process knows; nothing else changed."""
    return _scrub_text(text, urls=False)


def usage_error(error: BaseException | str) -> pytest.UsageError:
    """The usage error of ``error``'s message without a secret this process knows (a password
    pasted into another option) and without the password of any connection string it quotes,
    known or not (a gate declaration, an ini value or an option value that holds a DSN of another
    database): :func:`~pytest_atlas._dsn.hide_dsn_passwords`, which reads each URL as one word and
    so never cuts the message at a later "@" of its line. Every usage error built from an
    exception is made here."""
    return pytest.UsageError(own_message(str(error)))


def own_message(text: str) -> str:
    """A message of the plugin's own (a usage error, a check item's failure, a refused marker) as
    it may be shown: without the secrets this process knows and without the password of any
    connection string in it. (A test's own text only loses the known secrets: :func:`scrub`.)"""
    return hide_dsn_passwords(scrub(text))


def scrub_value(value: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
    """``value`` with every text in it scrubbed: strings are replaced, lists, tuples and dicts
    rebuilt, and the attributes of other objects (pytest's ``TerminalRepr`` dataclasses) scrubbed in
    place."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, int | float | bool | bytes) or depth > _DEPTH:
        return value
    seen = set() if seen is None else seen
    if id(value) in seen:
        return value
    seen.add(id(value))
    if isinstance(value, list):
        value[:] = [scrub_value(item, depth + 1, seen) for item in value]
        return value
    if isinstance(value, tuple):
        items = [scrub_value(item, depth + 1, seen) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {key: scrub_value(item, depth + 1, seen) for key, item in value.items()}
    names = (
        [field.name for field in dataclasses.fields(value)]
        if dataclasses.is_dataclass(value)
        else list(getattr(value, "__dict__", {}))
    )
    for name in names:
        try:
            current = getattr(value, name)
            cleaned = scrub_value(current, depth + 1, seen)
            if cleaned is not current:
                object.__setattr__(value, name, cleaned)
        except (AttributeError, TypeError):  # a read-only attribute: leave it
            continue
    return value


def _scrub_property(value: object) -> object:
    """A user property's value scrubbed; one that is JSON (a result payload) stays valid JSON."""
    if not isinstance(value, str) or scrub(value) == value:  # (most: nothing to scrub, left as they are)
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return scrub(value)
    if not isinstance(parsed, dict | list):
        return scrub(value)
    return json.dumps(scrub_value(parsed), default=str)  # (the keys in the order they had)


def scrub_report(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Scrub a report in place: its long representation, its xfail reason, its captured sections,
    its properties."""
    if report.longrepr is not None:
        report.longrepr = scrub_value(report.longrepr)
    reason = getattr(report, "wasxfail", None)  # (XFAIL and XPASS lines, JUnit XML's <skipped message>)
    if isinstance(reason, str):
        setattr(report, "wasxfail", scrub(reason))  # noqa: B010 (pytest declares no such attribute)
    report.sections[:] = [(title, scrub(text)) for title, text in report.sections]
    if isinstance(report, pytest.TestReport) and any(scrub(key) != key for key in report.keywords):
        # (they hold the test's name as it was made, before hide_secrets_in_ids renamed it)
        report.keywords = {scrub(key): value for key, value in report.keywords.items()}
    properties = getattr(report, "user_properties", None)
    if properties:
        properties[:] = [
            (name, value if name in _OWN_PROPERTIES else _scrub_property(value)) for name, value in properties
        ]


def hide_secrets_in_ids(items: list[pytest.Function]) -> None:
    """Rename, in place, the parametrized tests of one function whose id holds a secret this process
    knows: ``test_login[Dsn_Pa55]`` becomes ``test_login[***]``; ids that become alike are numbered
    as pytest numbers alike ids (``***0``, ``***1``). Only the name and the node id change (the
    ``callspec`` keeps the real id), alike in every process of the run, as the tests are made:
    before ``--lf`` and ``--sw`` compare the ids with those they stored (which are the new ones)."""
    ids: dict[pytest.Function, str] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (
            callspec is not None
            and item.name == f"{item.originalname}[{callspec.id}]"
            and item.nodeid.endswith(item.name)
        ):
            ids[item] = callspec.id
    hidden = {item: scrub(old) for item, old in ids.items() if scrub(old) != old}
    taken = {old for item, old in ids.items() if item not in hidden}
    alike = Counter(hidden.values())
    numbers: Counter[str] = Counter()
    for item, new in hidden.items():
        if alike[new] > 1 or new in taken:
            base, suffix = new, "_" if new[-1:].isdigit() else ""
            while f"{base}{suffix}{numbers[base]}" in taken:
                numbers[base] += 1
            new = f"{base}{suffix}{numbers[base]}"
            numbers[base] += 1
        taken.add(new)
        name = f"{item.originalname}[{new}]"
        _set_nodeid(item, item.nodeid[: -len(item.name)] + name)
        item.name = name


def _set_nodeid(item: pytest.Item, nodeid: str) -> None:
    # pytest 9.0 keeps a node's id as a string in ``_nodeid``; later pytest keeps a structured id
    # in a slot ``_id``, whose class parses the string form
    structured = getattr(item, "_id", None)
    if structured is None:
        setattr(item, "_nodeid", nodeid)  # noqa: B010 (no such attribute in later pytest's types)
    else:
        setattr(item, "_id", type(structured).parse(nodeid))  # noqa: B010


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    # renamed as they are made: before --lf's filter of a module's tests compares their ids
    result = yield
    if isinstance(result, list):
        hide_secrets_in_ids([item for item in result if isinstance(item, pytest.Function)])
    return result


class _ScrubbingFormatter(logging.Formatter):
    """The formatter of a log handler that writes around the reports (live logs in the terminal,
    ``--log-file``): each line it makes loses the secrets this process knows, when it is made (so a
    secret learnt later, a TCP server's password, is found too)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self.inner.format(record))


def scrub_log_handlers(config: pytest.Config) -> None:
    """Make pytest's live log (``log_cli``) and ``--log-file`` handlers scrub what they write: they
    write each record as it is logged, before (and besides) any report, so scrubbing the reports'
    captured logs does not reach them. The records themselves are left alone: a test's ``caplog``
    sees what it logged."""
    plugin = config.pluginmanager.get_plugin("logging-plugin")
    for name in ("log_cli_handler", "log_file_handler"):
        handler = getattr(plugin, name, None)
        if not isinstance(handler, logging.Handler):
            continue
        inner = handler.formatter or logging.Formatter()
        if not isinstance(inner, _ScrubbingFormatter):
            handler.setFormatter(_ScrubbingFormatter(inner))


def conftest_failure(failure: Exception) -> pytest.UsageError | None:
    """The usage error to show for ``failure``, a conftest pytest could not load before the run
    (pytest's ``ConftestImportFailure``, known by its ``path`` and ``cause``), when the traceback
    pytest would print of it holds a secret this process knows: the same header and short
    traceback, scrubbed. ``None`` when there is nothing to hide (pytest then prints it itself)."""
    path, cause = getattr(failure, "path", None), getattr(failure, "cause", None)
    if not isinstance(cause, BaseException) or path is None:
        return None
    info = pytest.ExceptionInfo.from_exception(cause)
    info.traceback = info.traceback.filter(_users_entry)
    shown = f"ImportError while loading conftest '{path}'.\n"
    shown += str(info.getrepr(style="short", chain=False)) if info.traceback else info.exconly()
    cleaned = scrub(shown)
    return None if cleaned == shown else pytest.UsageError(cleaned)


#: the folders of the machinery a conftest is imported through (pytest's and pluggy's packages),
#: whose frames pytest does not show
_MACHINERY = tuple(
    str(Path(inspect.getfile(cls)).parent) + os.sep for cls in (pytest.Session, pytest.PytestPluginManager.__mro__[1])
)


def _users_entry(entry: Any) -> bool:
    """Whether a traceback entry is the user's code, as pytest shows a conftest's failure: not
    pytest's, pluggy's or importlib's, nor generated code."""
    where = str(entry.path)
    return (
        not where.startswith(_MACHINERY)
        and "importlib" not in where.split(os.sep)
        and not (where.startswith("<") and where.endswith(">"))
    )


def scrub_captured(config: pytest.Config) -> None:
    """Scrub what the global capture holds (what a conftest printed while it was loaded, which
    pytest writes out when loading it failed): read out and written back scrubbed, into the capture."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    read = getattr(capture, "read_global_capture", None)
    if not callable(read) or not getattr(capture, "is_globally_capturing", lambda: False)():
        return
    out, err = read()
    sys.stdout.write(scrub(out))
    sys.stderr.write(scrub(err))


def scrub_exception(value: BaseException) -> None:
    """Scrub, in place, the message of the exception that ends the run (``pytest.exit``'s reason,
    a ``KeyboardInterrupt``'s arguments), so that whoever shows it shows no secret."""
    with_reason = vars(value) if hasattr(value, "__dict__") else {}
    if isinstance(with_reason.get("msg"), str):
        with_reason["msg"] = scrub(with_reason["msg"])
    # (an exception class whose arguments are fixed keeps them: its text is scrubbed where it is
    # shown, in the terminal reporter's representation)
    with contextlib.suppress(AttributeError, TypeError):
        value.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in value.args)


class _InterruptionScrubber:
    """Scrubs the representation of the run's interruption the terminal reporter keeps until the
    end of the run (its banner and ``--full-trace``'s traceback, source lines and locals included)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)  # after the terminal reporter kept it
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        kept = getattr(reporter, "_keyboardinterrupt_memo", None)
        if kept is not None:
            scrub_value(kept)


def _exit_scrubbed() -> Generator[None, Any, Any]:
    """The rest of a hook wrapper that scrubs the reason of a ``pytest.exit`` out of the hook:
    pytest prints one raised in the session's start or finish (a terminal summary's too) itself,
    from the exception's message, without the interruption's hook."""
    try:
        return (yield)
    except pytest.exit.Exception as exc:
        scrub_exception(exc)
        raise


@pytest.hookimpl(wrapper=True, trylast=True)  # inside the capture's wrapper, which shows what was printed
def pytest_load_initial_conftests(early_config: pytest.Config) -> Any:
    try:
        return (yield)
    except Exception as exc:
        from pytest_atlas.plugin import learn_secrets  # (those of the command line are known once parsed)

        learn_secrets(early_config)
        scrub_captured(early_config)
        known = early_config.known_args_namespace
        error = conftest_failure(exc)
        if error is None or getattr(known, "help", False) or getattr(known, "version", False):
            raise  # (pytest shows --help and --version all the same, naming just the conftest)
        raise error from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_InterruptionScrubber(config), "atlas-interruption-scrubber")


@pytest.hookimpl(tryfirst=True)  # before the terminal reporter keeps its representation
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    scrub_exception(excinfo.value)


@pytest.hookimpl(wrapper=True, tryfirst=True)  # before anything logs: pytest's handlers catch logs from here on
def pytest_sessionstart(session: pytest.Session) -> Generator[None, Any, Any]:
    scrub_log_handlers(session.config)
    return (yield from _exit_scrubbed())


@pytest.hookimpl(tryfirst=True)  # before every reporter (the terminal, JUnit XML, xdist's worker)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    scrub_report(report)


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    scrub_report(report)


def scrub_junit_writer(plugin: object) -> None:
    """Scrub what JUnit XML's writer (pytest's ``LogXML``, known by what it holds) keeps apart from
    the reports until it writes the file: the ``record_testsuite_property`` values and the
    attributes of each test case (``record_xml_attribute``'s). Anything else is left alone."""
    properties = getattr(plugin, "global_properties", None)
    reporters = getattr(plugin, "node_reporters_ordered", None)
    if not isinstance(properties, list) or not isinstance(reporters, list):
        return
    properties[:] = [scrub_value(pair) for pair in properties]
    for reporter in reporters:
        attrs = vars(reporter).get("attrs")  # a test case still open (a finished one is an element)
        if attrs is None and callable(getattr(reporter, "to_xml", None)):
            attrs = getattr(reporter.to_xml(), "attrib", None)
        if isinstance(attrs, dict):
            attrs.update({key: scrub(value) for key, value in attrs.items() if isinstance(value, str)})


@pytest.hookimpl(wrapper=True, tryfirst=True)  # before JUnit XML's writer writes the file
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, Any, Any]:
    for plugin in session.config.pluginmanager.get_plugins():
        scrub_junit_writer(plugin)
    return (yield from _exit_scrubbed())


@pytest.hookimpl(tryfirst=True)
def pytest_internalerror(excrepr: Any, excinfo: Any) -> None:
    scrub_value(excrepr)


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: warnings.WarningMessage, when: str, nodeid: str, location: Any) -> None:
    text = str(warning_message.message)
    cleaned = scrub(text)
    if cleaned != text:
        try:
            warning_message.message = type(warning_message.message)(cleaned)
        except Exception:  # a warning class that takes other arguments
            warning_message.message = UserWarning(cleaned)
