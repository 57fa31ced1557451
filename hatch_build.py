"""Hatchling build hook: compiles the storability fast check (pytest_atlas/validation/_plain.c).

The C file becomes the extension module ``pytest_atlas.validation._plaincheck``, built with the C
compiler and flags this Python was built with (``sysconfig``: ``CC``, ``CFLAGS``, ``CCSHARED``,
``LDSHARED``; ``CC`` in the environment replaces the compiler, ``CFLAGS`` and ``LDFLAGS`` there are
added). A wheel then carries the module and
is tagged for this interpreter and platform; an editable install (``pip install -e .``) builds it
in place, next to the C file. When it cannot be built (no compiler, no Python headers, Windows'
compiler, which sysconfig does not name) the build warns and makes the pure wheel: the package then
uses the check written in Python, which gives the same verdicts, slower. ``PYTEST_ATLAS_NO_EXTENSION=1``
makes the pure wheel on purpose.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("pytest_atlas") / "validation" / "_plain.c"
MODULE = "_plaincheck"


class NotBuilt(Exception):
    """The extension could not be compiled here (the message says why)."""


def _config(name: str) -> str:
    return str(sysconfig.get_config_var(name) or "")


def _environment(name: str) -> list[str]:
    return shlex.split(os.environ.get(name, ""))


def compile_extension(source: Path, target: Path) -> None:
    """Compile ``source`` into the extension module file ``target``; :class:`NotBuilt` when it cannot."""
    compiler = os.environ.get("CC") or _config("CC")
    linker = _config("LDSHARED")
    include = sysconfig.get_paths()["include"]
    if not compiler or not linker:
        raise NotBuilt("this Python names no C compiler (sysconfig CC / LDSHARED)")
    if not (Path(include) / "Python.h").is_file():
        raise NotBuilt(f"no Python headers (Python.h) in {include}")
    compile_with = shlex.split(compiler)
    link_with = shlex.split(linker)
    if os.environ.get("CC"):  # LDSHARED starts with the compiler Python was built with
        link_with = [*compile_with, *link_with[1:]]
    if shutil.which(compile_with[0]) is None:
        raise NotBuilt(f"no C compiler {compile_with[0]!r} on PATH")
    # as distutils did: CFLAGS and LDFLAGS from the environment come after Python's own
    flags = [*shlex.split(_config("CFLAGS")), *shlex.split(_config("CCSHARED")), *_environment("CFLAGS")]
    includes = [f"-I{include}"]
    platform_include = sysconfig.get_paths().get("platinclude")
    if platform_include and platform_include != include:
        includes.append(f"-I{platform_include}")
    with tempfile.TemporaryDirectory() as scratch:
        obj = Path(scratch) / "_plain.o"
        built = Path(scratch) / target.name
        steps = [
            [*compile_with, *flags, *includes, "-c", str(source), "-o", str(obj)],
            [*link_with, *_environment("LDFLAGS"), str(obj), "-o", str(built)],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, check=False)
            except OSError as exc:
                raise NotBuilt(f"{shlex.join(step)}: {exc}") from None
            if done.returncode != 0:
                raise NotBuilt(f"{shlex.join(step)} failed:\n{done.stdout}{done.stderr}".rstrip())
        target.parent.mkdir(parents=True, exist_ok=True)
        # a new file renamed over the old one: a process that has the old module loaded keeps it intact
        staged = target.with_name(target.name + ".new")
        shutil.copyfile(built, staged)
        os.replace(staged, target)


class CustomBuildHook(BuildHookInterface):
    """Builds the extension into the wheel (or in place, for an editable install)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if os.environ.get("PYTEST_ATLAS_NO_EXTENSION") == "1":
            self._warn("PYTEST_ATLAS_NO_EXTENSION=1: building the pure-Python wheel")
            return
        root = Path(self.root)
        file_name = MODULE + _config("EXT_SUFFIX")
        relative = SOURCE.parent / file_name
        if version == "editable":
            target = root / relative  # next to the sources the editable install points at
        else:
            self._scratch = tempfile.mkdtemp(prefix="pytest-atlas-build-")
            target = Path(self._scratch) / file_name
        try:
            compile_extension(root / SOURCE, target)
        except NotBuilt as exc:
            self._warn(f"the C storability check was not built, the package will use the slower Python one: {exc}")
            if version == "editable":
                target.unlink(missing_ok=True)  # a module built from an older _plain.c is not used either
            return
        if version != "editable":
            build_data["force_include"][str(target)] = relative.as_posix()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def _warn(self, message: str) -> None:
        print(f"pytest-atlas build: WARNING: {message}", file=sys.stderr)
