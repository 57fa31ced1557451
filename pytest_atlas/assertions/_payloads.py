"""``assert_valid_payload``: a payload matches its Atlas JSON Schema, or the test fails with the violations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_atlas.validation import PayloadCheck, Violation, validator_for

__all__ = ["PayloadAssertionError", "assert_valid_payload"]


class PayloadAssertionError(AssertionError):
    """The payload breaks its schema. Carries the :class:`~pytest_atlas.validation.PayloadCheck`
    (``.result``) and every violation (``.violations``); its message lists them one per line."""

    shown = 15

    def __init__(self, result: PayloadCheck, *, strict: bool) -> None:
        self.result = result
        self.strict = strict
        self.violations: tuple[Violation, ...] = result.errors + result.warnings if strict else result.errors
        count = len(self.violations)
        what = "violation" if strict else "error"
        lines = [
            f"payload does not match the {result.schema} schema ({count} {what}{'' if count == 1 else 's'}"
            f"{'; warnings count as errors' if strict and result.warnings else ''}):"
        ]
        lines += [f"  {v.format()}" for v in self.violations[: self.shown]]
        if count > self.shown:
            lines.append(f"  ... and {count - self.shown} more (all of them in exc.violations)")
        if not strict and result.warnings:
            lines.append(f"  ({len(result.warnings)} tolerated Atlas quirk(s) not shown: exc.result.warnings)")
        super().__init__("\n".join(lines))


def assert_valid_payload(instance: Any, schema: str | Mapping[str, Any], *, warnings: bool = True) -> list[Violation]:
    """Assert that ``instance`` matches ``schema`` (a name such as ``"session-metadata"`` or your own
    schema). Returns the warnings (tolerated Atlas quirks); with ``warnings=False`` they fail too.

    On failure raises :class:`PayloadAssertionError`, whose message is one compact line per
    violation: ``$.reward_stats.score: type: expected number, got string "0.9"``.
    """
    __tracebackhide__ = True
    result = validator_for(schema).check(instance)
    if result.errors or (not warnings and result.warnings):
        raise PayloadAssertionError(result, strict=not warnings)
    return list(result.warnings)
