"""Sweep expansion: names, seeds, overrides, axes, ablation ranks at equal budget, errors."""

from __future__ import annotations

import pytest
import yaml

from mtpeft.adapters.params import calculate_ablation_ranks, verify_parameter_parity
from mtpeft.backbone import load_backbone
from mtpeft.errors import ConfigError
from mtpeft.model.build import build_model
from mtpeft.sweep import expand_sweep, load_sweep
from mtpeft.sweep.spec import architecture_on_meta
from tests.sweep.fake_train import sweep_config


def test_strategies_times_seeds_with_names_seeds_and_folders(tmp_path):
    plan = expand_sweep(sweep_config(tmp_path / "out", strategies=("s2", "s3a", "s4"), seeds=2))
    assert [r.name for r in plan.runs] == ["s2-seed0", "s2-seed1", "s3a-seed0", "s3a-seed1", "s4-seed0", "s4-seed1"]
    for run in plan.runs:
        assert run.config.seed == run.seed == int(run.name[-1])
        assert run.config.strategy.name == run.label
        assert run.path == tmp_path / "out" / run.name
        assert run.config.training.max_steps == 2 and run.config.model.backbone == "tiny"  # the base is kept


def test_seed_list_cli_seeds_and_overrides(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_config(tmp_path / "out", strategies=("s2",))))
    plan = load_sweep(path, ["training.max_steps=5", "sweep.seeds=[3, 11]"])
    assert [(r.name, r.seed, r.config.training.max_steps) for r in plan.runs] == [("s2-seed3", 3, 5), ("s2-seed11", 11, 5)]
    assert [r.seed for r in load_sweep(path, seeds=3).runs] == [0, 1, 2]  # --seeds N replaces sweep.seeds


def test_entries_with_overrides_and_two_axes(tmp_path):
    data = sweep_config(tmp_path, seeds=1)
    data["sweep"]["strategies"] = ["s2", {"name": "s3a-attention", "set": {"strategy.name": "s3a", "strategy.fusion": "attention"}}]
    data["sweep"]["ablations"] = None
    data["sweep"]["lr"] = None
    with pytest.raises(ConfigError, match="sweep.lr"):  # unknown sweep fields are named
        expand_sweep(data)
    del data["sweep"]["lr"]
    runs = expand_sweep(data).runs
    assert [(r.name, r.config.strategy.name, r.config.strategy.fusion) for r in runs] == [
        ("s2-seed0", "s2", "gated"), ("s3a-attention-seed0", "s3a", "attention")]
    assert runs[1].overrides == {"strategy.name": "s3a", "strategy.fusion": "attention"}


def test_axes_multiply_and_clashing_keys_are_refused(tmp_path):
    data = sweep_config(tmp_path, strategies=("s3a",), seeds=1)
    data["sweep"]["ablations"] = {"variants": ["A1", "A3"]}
    with pytest.raises(ConfigError, match="both set strategy.name"):
        expand_sweep(data)
    data["sweep"]["strategies"] = [{"name": "lr1", "set": {"training.lr": 0.001}}, {"name": "lr2", "set": {"training.lr": 0.002}}]
    runs = expand_sweep(data).runs
    assert [r.name for r in runs] == ["lr1-A1-seed0", "lr1-A3-seed0", "lr2-A1-seed0", "lr2-A3-seed0"]
    assert [(r.config.training.lr, r.config.strategy.name) for r in runs] == [
        (0.001, "s2"), (0.001, "s3a"), (0.002, "s2"), (0.002, "s3a")]


@pytest.mark.parametrize("entry, message", [
    ({"name": "a/b"}, "folder-safe"),
    ({"name": "x", "set": {"seed": 3}}, "sets seed"),
    ({"name": "x", "set": {"output_dir": "elsewhere"}}, "sets output_dir"),
    ({"name": "x", "set": {"strategy.name": "s9"}}, "strategy.name"),
])
def test_bad_entries_are_named(tmp_path, entry, message):
    data = sweep_config(tmp_path, seeds=1)
    data["sweep"]["strategies"] = [entry]
    with pytest.raises(ConfigError, match=message):
        expand_sweep(data)


def test_duplicate_names_and_bad_seeds(tmp_path):
    data = sweep_config(tmp_path, strategies=("s2", "s2"))
    with pytest.raises(ConfigError, match="s2-seed0"):
        expand_sweep(data)
    for seeds in (0, [], [1, 1]):
        with pytest.raises(ConfigError, match="sweep.seeds"):
            expand_sweep(sweep_config(tmp_path, seeds=seeds))


def test_without_axes_the_base_runs_over_seeds(tmp_path):
    data = sweep_config(tmp_path, seeds=2)
    del data["sweep"]["strategies"]
    assert [r.name for r in expand_sweep(data).runs] == ["s3a-seed0", "s3a-seed1"]


def test_ablation_ranks_are_solved_for_the_configs_backbone_and_give_equal_budgets(tmp_path):
    tasks = ("semeval2014t7", "semeval2016t12", "semeval2017t3")
    data = sweep_config(tmp_path, strategies=(), seeds=1, tasks=tasks)
    del data["sweep"]["strategies"]
    data["sweep"]["ablations"] = {"variants": ["A1", "A2", "A3", "A4"], "target_rank": 8}
    plan = expand_sweep(data)
    solved = calculate_ablation_ranks(architecture_on_meta("tiny"), len(tasks), target_rank=8)
    assert plan.ablation_ranks == {
        name: {"shared_rank": v.shared_rank, "private_rank": v.private_rank, "trainable_adapters_and_fusion": v.trainable}
        for name, v in solved.variants.items()}
    # the runs as trained: adapters + fusion counted on the built models are the solver's numbers, within tolerance
    budgets = {}
    for run in plan.runs:
        counts = build_model(run.config, load_backbone("tiny", seed=run.seed)).model.parameter_counts()
        budgets[run.label] = sum(counts.adapters.values()) + counts.fusion
        assert budgets[run.label] == solved.variants[run.label].trainable, run.label
    verify_parameter_parity(budgets, tolerance=0.05)
    a3, a4 = plan.runs[2].config.strategy, plan.runs[3].config.strategy
    assert (a3.fusion, a4.fusion, a3.placement, a4.placement) == ("sum", "gated", "output", "output")
