"""docs/schemas.md is generated from the schemas and current; documented examples and outputs are real."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from pytest_atlas import SCHEMA_NAMES, PayloadAssertionError, assert_valid_payload, check_payload, load_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_schemas_md_is_generated_from_the_current_schemas() -> None:
    generator = runpy.run_path(str(DOCS / "_schemas_md.py"))
    assert (DOCS / "schemas.md").read_text(encoding="utf-8") == generator["render"](), (
        "docs/schemas.md is stale: run python docs/_schemas_md.py"
    )


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_schema_carries_one_clean_example(name: str) -> None:
    [example] = load_schema(name)["examples"]
    result = check_payload(example, name)
    assert (result.errors, result.warnings, result.unknown_fields) == ((), (), ())
    assert f"## {name}\n" in (DOCS / "schemas.md").read_text(encoding="utf-8")


def test_the_failure_shown_in_contracts_md_is_what_users_get() -> None:
    stats = load_schema("reward-stats")["examples"][0]
    stats.update(score="0.9", sample_count=-1)
    with pytest.raises(PayloadAssertionError) as info:
        assert_valid_payload(stats, "reward-stats")
    shown = f"AssertionError: {info.value}"
    assert shown in (DOCS / "contracts.md").read_text(encoding="utf-8")
