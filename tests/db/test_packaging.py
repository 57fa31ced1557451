"""The wheel carries schema.sql, jsonschemas/ and the C storability check (compiled by hatch_build.py),
and works installed in a fresh virtualenv; without the C check (``PYTEST_ATLAS_NO_EXTENSION=1``, or no
compiler) the wheel is pure and uses the Python one; the sdist carries what builds the C check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the C check as the wheel holds it
EXTENSION = "pytest_atlas/validation/_plaincheck" + sysconfig.get_config_var("EXT_SUFFIX")
#: the suite's own install was built without the C check, so the wheels here are too
WITHOUT_EXTENSION = os.environ.get("PYTEST_ATLAS_NO_EXTENSION") == "1"


def _build_wheel(out: Path, **env: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    [built] = out.glob("pytest_atlas-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def _fresh_venv(wheel: Path, venv: Path) -> tuple[Path, Path]:
    """A new virtualenv with ``wheel`` installed in it (no pip, no dependencies): its python, its site."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    with zipfile.ZipFile(wheel) as zf:
        pure = (
            "Root-Is-Purelib: true" in zf.read("pytest_atlas-" + wheel.name.split("-")[1] + ".dist-info/WHEEL").decode()
        )
    site = Path(
        subprocess.run(
            [
                str(python),
                "-c",
                f"import sysconfig; print(sysconfig.get_paths()[{'purelib' if pure else 'platlib'!r}])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies (psycopg, hypothesis, ...) come from this environment; pytest_atlas from the wheel
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


def test_wheel_contains_the_data_files_and_the_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("pytest_atlas/_data/schema.sql") == (ROOT / "schema.sql").read_bytes()
        schemas = sorted(p.name for p in (ROOT / "jsonschemas").glob("*.schema.json"))
        assert schemas, "no JSON Schemas in the repository"
        for name in schemas:
            assert zf.read(f"pytest_atlas/_data/jsonschemas/{name}") == (ROOT / "jsonschemas" / name).read_bytes()
        assert "pytest_atlas/py.typed" in names
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "[pytest11]\natlas = pytest_atlas.plugin" in zf.read(entry_points).decode()
        assert not [name for name in names if name.endswith(".c")]  # compiled in, not shipped
        [wheel_file] = [n for n in names if n.endswith(".dist-info/WHEEL")]
        if WITHOUT_EXTENSION:
            return
        assert EXTENSION in names
        # a platform wheel for this interpreter, not py3-none-any
        assert "Root-Is-Purelib: false" in zf.read(wheel_file).decode()
    assert wheel.name.endswith(".whl") and "-py3-none-any" not in wheel.name
    interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{interpreter}-{interpreter}-" in wheel.name, wheel.name


def test_without_the_extension_the_wheel_is_pure_and_uses_the_python_check(tmp_path: Path) -> None:
    pure = _build_wheel(tmp_path / "out", PYTEST_ATLAS_NO_EXTENSION="1")
    assert pure.name.endswith("-py3-none-any.whl"), pure.name
    with zipfile.ZipFile(pure) as zf:
        names = set(zf.namelist())
    assert "pytest_atlas/_data/schema.sql" in names
    assert not [name for name in names if "_plaincheck" in name and not name.endswith(".pyi")]
    python, _ = _fresh_venv(pure, tmp_path / "fresh")
    check = (
        "from pytest_atlas.validation import _storable, is_valid\n"
        "assert _storable.native_is_plain_json is None\n"
        "assert _storable.is_plain_json is _storable.is_plain_json_in_python\n"
        "assert is_valid({'score': 0.5}, 'reward-stats') and not is_valid({'score': float('nan')}, 'reward-stats')\n"
        "print('PURE OK')\n"
    )
    done = subprocess.run([str(python), "-c", check], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "PURE OK"


def test_the_sdist_carries_the_c_source_and_the_build_hook(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [sdist] = tmp_path.glob("pytest_atlas-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {name.split("/", 1)[1] for name in tf.getnames() if "/" in name}
    assert {"hatch_build.py", "pytest_atlas/validation/_plain.c", "pytest_atlas/validation/_plaincheck.pyi"} <= names
    assert not [name for name in names if name.endswith((".so", ".pyd"))]  # an editable build's module stays out


def test_installed_wheel_works_in_a_fresh_virtualenv(wheel: Path, tmp_path: Path) -> None:
    python, site = _fresh_venv(wheel, tmp_path / "fresh")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_installed.py").write_text(
        "import json, pathlib, pytest_atlas\n"
        "from pytest_atlas._resources import jsonschemas_dir, schema_path\n"
        "from pytest_atlas.validation import _storable\n"
        "def test_from_wheel(atlas_db):\n"
        "    native = _storable.native_is_plain_json\n"
        "    module = __import__('sys').modules.get('pytest_atlas.validation._plaincheck')\n"
        "    print('INFO', json.dumps({'package': pytest_atlas.__file__, 'schema': str(schema_path()),\n"
        "        'schemas': len(list(jsonschemas_dir().glob('*.schema.json'))),\n"
        "        'native': native is not None and _storable.is_plain_json is native,\n"
        "        'extension': getattr(module, '__file__', None)}))\n"
        "    assert atlas_db.execute('SELECT count(*) FROM sessions').fetchone() == (0,)\n"
    )
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestAssertRewriteWarning",
        ],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stdout.splitlines()[-1], result.stdout
    info = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("INFO ")).split(" ", 1)[1])
    assert info["package"].startswith(str(site)), info
    assert info["schema"] == str(site / "pytest_atlas" / "_data" / "schema.sql")
    assert info["schemas"] == len(list((ROOT / "jsonschemas").glob("*.schema.json")))
    if not WITHOUT_EXTENSION:  # the installed wheel's C check is the one is_valid uses
        assert info["native"] is True, info
        assert info["extension"] == str(site / EXTENSION), info
