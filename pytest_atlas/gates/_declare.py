"""Gate declarations from configuration: ``[tool.pytest-atlas]`` in pyproject.toml, ``atlas_gate`` ini
lines, marker keywords; and the allow-list of accepted regressions. No pytest here."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_atlas._arguments import check_date, unknown_names
from pytest_atlas.errors import ConfigError, InvalidArgument
from pytest_atlas.gates._allow_list import Acceptance
from pytest_atlas.gates._spec import GateSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found]

__all__ = ["Acceptance", "Declarations", "parse_ini_line", "read_pyproject"]

#: an option's name and its ``=`` in an ini line (spaces around ``=`` allowed)
_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*")
#: where a value may end: before the next ``name=``
_NEXT_KEY = re.compile(r"\s+[A-Za-z_][A-Za-z0-9_-]*\s*=")


#: the table pytest-atlas reads in pyproject.toml, and the keys it may hold
_TABLE = "pytest-atlas"
_TOP_KEYS = ("gates", "accept")
#: the keys of one ``[[tool.pytest-atlas.accept]]`` entry
_ACCEPT_KEYS = ("gate", "until", "reason", "learning_key")
#: what may separate the words of a table's name (``pytest_atlas`` is a misspelt ``pytest-atlas``)
_SEPARATORS = re.compile(r"[-_.\s]")


@dataclass(frozen=True)
class Declarations:
    gates: tuple[GateSpec, ...] = ()
    accepted: tuple[Acceptance, ...] = ()
    source: str = ""
    #: where each gate was declared (a file name), parallel to ``gates``
    origins: tuple[str, ...] = ()


def _spec(name: str, options: Any, where: str) -> GateSpec:
    if not isinstance(options, Mapping):
        raise ConfigError(
            where,
            options,
            "a gate must be a table of options",
            hint='for example { kind = "threshold", threshold = 0.7 }',
        )
    try:
        return GateSpec.build(name, dict(options))
    except InvalidArgument as exc:
        raise ConfigError(where, name, exc.problem, hint=exc.hint) from None


def _check_keys(table: Mapping[str, Any], valid: Sequence[str], where: str, what: str) -> None:
    """Every key of ``table`` is one of ``valid``: an unknown one (a typo) is never ignored."""
    for key in table:
        if key not in valid:
            error = unknown_names("key", [key], valid, of=f" of {what}")
            raise ConfigError(where, key, error.problem, hint=error.hint, show_value=False)


def _tool_table(document: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """``[tool.pytest-atlas]`` (empty when absent); a misspelt name of it is refused, not ignored."""
    tools = document.get("tool", {})
    if not isinstance(tools, Mapping):
        return {}
    for name in tools:
        if name != _TABLE and _SEPARATORS.sub("", name.lower()) == _SEPARATORS.sub("", _TABLE):
            raise ConfigError(
                f"{path.name} [tool.{name}]",
                name,
                f"unknown table (did you mean [tool.{_TABLE}]?)",
                hint=f"pytest-atlas reads [tool.{_TABLE}] (with a hyphen): rename the table",
            )
    table = tools.get(_TABLE, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path.name} [tool.{_TABLE}]", table, "expected a table")
    _check_keys(table, _TOP_KEYS, f"{path.name} [tool.{_TABLE}]", f"[tool.{_TABLE}]")
    return table


def _acceptance(entry: Any, where: str, known: set[str]) -> Acceptance:
    if not isinstance(entry, Mapping):
        raise ConfigError(
            where,
            entry,
            "each accepted regression is a table with gate, until and reason",
            hint='[[tool.pytest-atlas.accept]] gate = "no-regression" until = 2026-01-31 reason = "ticket 123"',
        )
    _check_keys(entry, _ACCEPT_KEYS, where, "an accepted regression")
    gate = entry.get("gate")
    if gate not in known:
        raise ConfigError(
            f"{where}.gate",
            gate,
            "names no declared gate",
            hint="declared gates: " + (", ".join(sorted(known)) or "none"),
        )
    if entry.get("until") is None:
        raise ConfigError(
            f"{where}.until",
            None,
            "every accepted regression needs an expiry date (YYYY-MM-DD)",
            hint="acceptances expire so that nobody forgets them",
        )
    try:
        until = check_date("until", entry["until"])
    except InvalidArgument as exc:
        raise ConfigError(f"{where}.until", entry["until"], "expected a date as YYYY-MM-DD", hint=exc.hint) from None
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"{where}.reason", reason, "say why the regression is accepted (a ticket, a name)")
    key = entry.get("learning_key")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{where}.learning_key", key, "expected a string")
    return Acceptance(str(gate), until, reason.strip(), key)


def parse_ini_line(line: str, where: str) -> GateSpec:
    """``NAME: kind=threshold threshold=0.7 status=["succeeded"]`` -> a gate. Values are TOML."""
    name, sep, rest = line.partition(":")
    if not sep or not name.strip():
        raise ConfigError(
            where,
            line,
            "expected 'NAME: key=value key=value ...'",
            hint="for example 'reward-floor: kind=threshold threshold=0.7'",
        )
    options: dict[str, Any] = {}
    position = 0
    while rest[position:].strip():
        match = _KEY.match(rest, position)
        if match is None:
            raise ConfigError(where, rest[position:].split()[0], "expected key=value")
        key, start = match.group(1), match.end()
        if key in options:
            raise ConfigError(where, line, f"{key} is given twice", hint=f"keep one {key}=...")
        options[key], position = _value(rest, start)
    return _spec(name.strip(), options, f"{where} ({name.strip()})")


def _value(text: str, start: int) -> tuple[Any, int]:
    """The value that starts at ``start`` and where it ends: the shortest TOML value that reaches
    the next ``key=`` (or the end), spaces inside strings, arrays and tables included; else a bare
    word (a string) up to the next space."""
    for end in [m.start() for m in _NEXT_KEY.finditer(text, start)] + [len(text)]:
        try:
            return tomllib.loads(f"v = {text[start:end]}")["v"], end
        except tomllib.TOMLDecodeError:
            continue
    word = text[start:].split(maxsplit=1)[0] if text[start:].strip() else ""
    return word, start + len(word)


def read_pyproject(path: Path, ini_lines: Sequence[str] = (), ini_name: str = "ini") -> Declarations:
    """Gates and acceptances from ``path`` (a pyproject.toml, may be absent) and ini lines."""
    table: Mapping[str, Any] = {}
    if path.is_file():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), "", f"not valid TOML: {exc}") from None
        table = _tool_table(document, path)
    gates: list[GateSpec] = []
    declared = table.get("gates", {})
    where = f"{path.name} [tool.pytest-atlas.gates]"
    if isinstance(declared, Mapping):
        gates += [_spec(str(name), options, f"{where}.{name}") for name, options in declared.items()]
    elif isinstance(declared, list):
        for index, options in enumerate(declared):
            if not isinstance(options, Mapping) or not isinstance(options.get("name"), str):
                raise ConfigError(
                    f"{where}[{index}]",
                    options,
                    "every [[tool.pytest-atlas.gates]] entry needs a name",
                    hint='name = "reward-floor"',
                )
            gates.append(
                _spec(
                    options["name"],
                    {k: v for k, v in options.items() if k != "name"},
                    f"{where}[{index}] ({options['name']})",
                )
            )
    else:
        raise ConfigError(where, declared, "expected tables of gates")
    origins = [path.name] * len(gates) + [ini_name] * len(ini_lines)
    gates += [parse_ini_line(line, f"{ini_name} atlas_gate") for line in ini_lines]
    names = [gate.name for gate in gates]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(where, ", ".join(duplicates), "gate names must be unique")
    raw_accept = table.get("accept", [])
    if not isinstance(raw_accept, list):
        raise ConfigError(
            f"{path.name} [tool.pytest-atlas.accept]", raw_accept, "expected [[tool.pytest-atlas.accept]] entries"
        )
    return Declarations(
        tuple(gates),
        tuple(
            _acceptance(entry, f"{path.name} [[tool.pytest-atlas.accept]][{index}]", set(names))
            for index, entry in enumerate(raw_accept)
        ),
        str(path),
        tuple(origins),
    )
