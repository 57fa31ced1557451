"""pytest's reruns of failed items (``--lf``, ``--ff``, ``--sw``) with check items that need others.

pytest's cache plugins rerun the items whose node ids failed last time (the check items' ids are
stable: see ``CheckItem``). Some check items have no verdict alone:

* a range item of a split contract column (``sessions.metadata[2/4]``): the column's verdict
  needs every range of it (see ``merge_split``);
* a marker gate (``test_harness.py::atlas_gate[floor]``): it judges the sessions the test that
  declares it writes, and is an error unless that test ran before it in this process.

So when such an item failed last time, ``--lf`` and ``--ff`` rerun what it needs too (its column's
every range, its test), and ``--sw`` starts from the first of them. This reads and adjusts the
state of pytest's ``lfplugin`` and ``stepwiseplugin`` (their ``lastfailed`` and
``cached_info.last_failed``), before they select: a plugin object registered after them, whose
hook runs after the contract and gate items were added and before the cache plugins select.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_atlas.plugin._checks import check_mode

__all__ = ["needed_with"]


def needed_with(item: pytest.Item, items: list[pytest.Item]) -> list[pytest.Item]:
    """The items of ``items`` that ``item`` has no verdict without (itself excluded)."""
    from pytest_atlas.plugin._contract import ContractItem
    from pytest_atlas.plugin._gate_item import GateItem

    if isinstance(item, GateItem) and item.declared_on is not None:
        return [other for other in items if other is item.declared_on]
    if isinstance(item, ContractItem) and item.id_range is not None:
        return [
            other
            for other in items
            if other is not item and isinstance(other, ContractItem) and other.roster_key == item.roster_key
        ]
    return []


def _key_like(item: pytest.Item, known: Any) -> Any:
    """``item``'s node id in the form ``known`` has (a string, or pytest's structured id)."""
    return item.nodeid if isinstance(known, str) or not hasattr(item, "id") else item.id


class _Reruns:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        plugins = self.config.pluginmanager
        self._last_failed(plugins.get_plugin("lfplugin"), items)
        self._stepwise(plugins.get_plugin("stepwiseplugin"), items)

    @staticmethod
    def _last_failed(plugin: Any, items: list[pytest.Item]) -> None:
        lastfailed = getattr(plugin, "lastfailed", None)
        if not getattr(plugin, "active", False) or not isinstance(lastfailed, dict) or not lastfailed:
            return
        failed = {str(key) for key in lastfailed}
        known = next(iter(lastfailed))
        for item in items:
            if item.nodeid in failed:
                for other in needed_with(item, items):
                    lastfailed.setdefault(_key_like(other, known), True)

    @staticmethod
    def _stepwise(plugin: Any, items: list[pytest.Item]) -> None:
        cached: Any = getattr(plugin, "cached_info", None)
        last = getattr(cached, "last_failed", None)
        if cached is None or last is None:
            return
        failed = next((item for item in items if item.nodeid == str(last)), None)
        if failed is None:
            return
        first = min((items.index(other) for other in [failed, *needed_with(failed, items)]), default=0)
        cached.last_failed = _key_like(items[first], last)


@pytest.hookimpl(trylast=True)  # after pytest's cache plugins registered themselves
def pytest_configure(config: pytest.Config) -> None:
    if check_mode(config) and config.pluginmanager.get_plugin("cacheprovider") is not None:
        config.pluginmanager.register(_Reruns(config), "atlas-reruns")
