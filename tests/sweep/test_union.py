"""`sweep.combine: union`: each entry of each axis alone; two entries with one configuration refused."""

from __future__ import annotations

import pytest

from mtpeft.errors import ConfigError
from mtpeft.sweep import expand_sweep
from tests.sweep.fake_train import sweep_config


def test_union_runs_each_entry_alone_and_product_combines_them(tmp_path):
    data = sweep_config(tmp_path / "s", strategies=("s2", "s3a"), seeds=2)
    data["sweep"]["ablations"] = {"variants": ["A3", "A4"], "target_rank": 8}
    data["strategy"] = {"placement": "output"}
    union = expand_sweep({**data, "sweep": {**data["sweep"], "combine": "union"}})
    assert [r.name for r in union.runs] == ["s2-seed0", "s2-seed1", "s3a-seed0", "s3a-seed1",
                                            "A3-seed0", "A3-seed1", "A4-seed0", "A4-seed1"]
    assert union.runs[0].config.strategy.name == "s2" and union.runs[4].config.strategy.fusion == "sum"
    with pytest.raises(ConfigError, match="both set strategy.name"):  # the product of these axes is contradictory
        expand_sweep(data)


def test_union_refuses_two_entries_with_the_same_configuration(tmp_path):
    data = sweep_config(tmp_path / "s", strategies=("s2",), seeds=1)
    data["sweep"] = {"seeds": 1, "combine": "union", "ablations": {"variants": ["A1"], "target_rank": 8}}
    a1_rank = expand_sweep(data).runs[0].config.strategy.shared_rank  # what the solver gives A1 (= S2) here
    data["strategy"] = {"shared_rank": a1_rank}
    data["sweep"]["strategies"] = ["s2"]
    with pytest.raises(ConfigError, match="'s2' and 'A1' give the same configuration"):
        expand_sweep(data)
    data["strategy"] = {"shared_rank": a1_rank + 1}  # a different rank: two configurations, both run
    assert [r.label for r in expand_sweep(data).runs] == ["s2", "A1"]


def test_combine_must_be_product_or_union(tmp_path):
    data = sweep_config(tmp_path / "s")
    data["sweep"]["combine"] = "zip"
    with pytest.raises(ConfigError, match="field 'sweep.combine'"):
        expand_sweep(data)
