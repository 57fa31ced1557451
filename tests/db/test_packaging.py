"""The wheel carries schema.sql and jsonschemas/, and works installed in a fresh virtualenv."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("pytest_atlas-*.whl")
    return built


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


def test_installed_wheel_works_in_a_fresh_virtualenv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies (psycopg, hypothesis, ...) come from this environment; pytest_atlas from the wheel
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_installed.py").write_text(
        "import json, pathlib, pytest_atlas\n"
        "from pytest_atlas._resources import jsonschemas_dir, schema_path\n"
        "def test_from_wheel(atlas_db):\n"
        "    print('INFO', json.dumps({'package': pytest_atlas.__file__, 'schema': str(schema_path()),\n"
        "        'schemas': len(list(jsonschemas_dir().glob('*.schema.json')))}))\n"
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
