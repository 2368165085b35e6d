"""Bad adapter configurations give one clear error listing valid choices."""

from __future__ import annotations

import pytest

from mtpeft.adapters.model import MultiAdapterBackbone, Route
from mtpeft.backbone import tiny_llama
from mtpeft.errors import ConfigError, MtpeftError

ROUTES = {"a": Route(("shared",))}


def test_unknown_target_module_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown target modules \['qkv_proj'\].*down_proj.*v_proj"):
        MultiAdapterBackbone(tiny_llama(0), {"shared": 4}, ROUTES, target_modules=("q_proj", "qkv_proj"))


@pytest.mark.parametrize("rank", [0, -1, 2.5])
def test_rank_must_be_positive_integer(rank):
    with pytest.raises(ConfigError, match="rank must be a positive integer"):
        MultiAdapterBackbone(tiny_llama(0), {"shared": rank}, ROUTES)


def test_unknown_fusion_and_placement():
    with pytest.raises(MtpeftError, match="valid choices: attention, gated, sum"):
        MultiAdapterBackbone(tiny_llama(0), {"shared": 4}, ROUTES, fusion="concat")
    with pytest.raises(ConfigError, match="valid choices: layer, output"):
        MultiAdapterBackbone(tiny_llama(0), {"shared": 4}, ROUTES, placement="middle")
