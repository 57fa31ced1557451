"""Where the shipped data files live: ``schema.sql`` and ``jsonschemas/``.

In the repository both sit at the top level (they are the single sources of truth). The wheel
copies them to ``pytest_atlas/_data/``. This module finds them in either place.
"""

from __future__ import annotations

from pathlib import Path

from pytest_atlas.errors import AtlasError

__all__ = ["jsonschemas_dir", "schema_path"]

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.exists():
            return candidate
    raise AtlasError(
        f"pytest-atlas cannot find its data file {name!r} (looked in {_PACKAGE / '_data'} and {_PACKAGE.parent})",
        hint="reinstall the package: pip install --force-reinstall pytest-atlas",
    )


def schema_path() -> Path:
    """The Atlas runtime schema shipped with pytest-atlas."""
    return _find("schema.sql")


def jsonschemas_dir() -> Path:
    """The folder of ``<name>.schema.json`` files shipped with pytest-atlas."""
    return _find("jsonschemas")
