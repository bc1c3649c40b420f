"""collectors.base.option_values: what ``create`` sees when it is handed fewer keys."""

from __future__ import annotations

import pytest

from collectors import bond, hwmon, mdstat, zfs
from collectors.base import Option, option_values


def test_missing_keys_take_their_default_and_given_ones_stay():
    declared = {
        "a": Option(int, 1, "A."),
        "b": Option(str, "x", "B."),
        "c": Option(bool, True, "C."),
    }
    got = option_values({"b": "given", "c": False, "undeclared": 9}, declared)
    assert got == {"a": 1, "b": "given", "c": False}


@pytest.mark.parametrize("module", [bond, hwmon, mdstat, zfs], ids=lambda m: m.__name__)
def test_a_collector_created_without_options_has_the_declared_defaults(module):
    c = module.create("x", {})
    for key, opt in module.OPTIONS.items():
        default = tuple(opt.default) if isinstance(opt.default, list) else opt.default
        assert getattr(c, key) == default, key
