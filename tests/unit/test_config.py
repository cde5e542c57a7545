"""Settings read from the environment."""

from __future__ import annotations

from adapter.config import Settings


def test_search_parameters_setting_lists_codes_and_all_means_every_one() -> None:
    assert Settings.from_env({}).search_parameters == ()
    assert Settings.from_env({"CART_ADAPTER_SEARCH_PARAMETERS": "all"}).search_parameters == ()
    listed = Settings.from_env({"CART_ADAPTER_SEARCH_PARAMETERS": " priority, period ,"})
    assert listed.search_parameters == ("priority", "period")
