"""pytest hook of the reward assertions: a failing ``assert_reward_at_least`` (or any other reward
assertion) in an ordinary test also reaches the JSON report and the step summary, as kind
``assertion``."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from pytest_atlas._properties import result_property
from pytest_atlas.plugin._checks import CheckItem


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rewards = sys.modules.get("pytest_atlas.assertions._rewards")  # never imported: nothing to report
    if (
        rewards is not None
        and call.excinfo is not None
        and isinstance(call.excinfo.value, rewards.RewardAssertionError)
        and not isinstance(item, CheckItem)
    ):
        payload = call.excinfo.value.result.to_dict()
        payload["name"] = f"{item.nodeid}: {payload['name']}"
        payload["nodeid"] = item.nodeid
        item.user_properties.append(result_property("assertion", payload))
    yield
