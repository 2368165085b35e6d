"""Every strategy builds, runs forward and backward on every head, and trains the right parameters."""

from __future__ import annotations

import pytest
import torch

from mtpeft.backbone import Backbone, load_backbone, tiny_llama
from mtpeft.model.build import build_model
from mtpeft.model.strategies import STRATEGIES, plan_strategy
from tests.model.conftest import ALL_TASKS, features_for, make_config


def _step(built, batch):
    model = built.model
    model.train()
    output = model(batch)
    assert set(output.losses) == set(batch.tasks)
    for loss in output.losses.values():
        assert loss.ndim == 0 and torch.isfinite(loss)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    sum(output.losses.values()).backward()
    optimizer.step()
    return before


@pytest.mark.parametrize("strategy", ["s1", "s2", "s3a", "s3b"])
def test_strategy_trains_one_step_on_all_six_tasks(strategy, tiny_backbone, sample_documents, tokenizer):
    built = build_model(make_config(strategy), backbone=tiny_backbone)
    batch = built.model.collate(features_for(built, sample_documents, tokenizer))
    before = _step(built, batch)
    for name, param in built.model.named_parameters():
        changed = not torch.equal(before[name], param)
        if param.requires_grad and param.grad is not None and param.grad.abs().sum() > 0:
            assert changed, name
        if not param.requires_grad:
            assert not changed, name


def test_s3b_level1_gradient_from_a_level2_loss(tiny_backbone, sample_documents, tokenizer):
    """With detach_l1_for_l2 the level-1 adapter gets exactly zero gradient from level-2 losses."""
    for detach, expect_zero in ((True, True), (False, False)):
        fresh = Backbone(model=tiny_llama(0), tokenizer=tokenizer, name="tiny", source="test")
        built = build_model(make_config("s3b", detach_l1_for_l2=detach), backbone=fresh)
        # B starts at zero, which would make every level-1 gradient through the adapter path vanish.
        with torch.no_grad():
            for name, param in built.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.05)
        level2_only = {t: f for t, f in features_for(built, sample_documents, tokenizer).items() if built.tasks[t].level == 2}
        output = built.model(built.model.collate(level2_only))
        sum(output.losses.values()).backward()
        grads = [p.grad for p in built.model.backbone.adapter_parameters("level1").values()]
        total = sum(float(g.abs().sum()) for g in grads if g is not None)
        assert (total == 0.0) is expect_zero, (detach, total)


def test_s4_stage2_keeps_level1_frozen(tiny_backbone, sample_documents, tokenizer):
    built = build_model(make_config("s4", freeze_level1=True), backbone=tiny_backbone)
    stage1, stage2 = built.plan.stages
    assert set(stage1.tasks) == {t for t in ALL_TASKS if built.tasks[t].level == 1}
    for component in stage2.frozen:
        built.model.set_trainable(component, False)
    level1 = {n: p.detach().clone() for n, p in built.model.backbone.adapter_parameters("level1").items()}
    feats = {t: f for t, f in features_for(built, sample_documents, tokenizer).items() if t in stage2.tasks}
    batch = built.model.collate(feats)
    _step(built, batch)
    for name, param in built.model.backbone.adapter_parameters("level1").items():
        assert torch.equal(param, level1[name]), name
    assert any(p.grad is not None for p in built.model.backbone.adapter_parameters("level2").values())


def test_s4_unfrozen_level1_trains_in_stage2(tiny_backbone):
    built = build_model(make_config("s4", freeze_level1=False), backbone=tiny_backbone)
    assert "adapter:level1" not in built.plan.stages[1].frozen


def test_strategy_registry_lists_all_six():
    assert STRATEGIES.names() == ["s1", "s2", "s3a", "s3b", "s4", "s5"]
    levels = {"a": 1, "b": 2}
    cfg = make_config("s5", tasks=("semeval2014t7",)).strategy
    assert plan_strategy(cfg, levels).load_in_4bit


def test_s5_on_tiny_4bit_steps(tokenizer, sample_documents):
    backbone = load_backbone("tiny", load_in_4bit=True, with_tokenizer=False)
    backbone.tokenizer = tokenizer
    built = build_model(make_config("s5", tasks=("semeval2014t7", "semeval2017t3")), backbone=backbone)
    batch = built.model.collate(features_for(built, sample_documents, tokenizer))
    _step(built, batch)


@pytest.mark.slow
def test_s5_builds_and_steps_on_the_embedded_model(sample_documents):
    config = make_config("s5", tasks=("semeval2014t7", "semeval2017t3"))
    config.model.backbone = "embedded"
    built = build_model(config)
    import bitsandbytes as bnb

    assert isinstance(built.model.backbone.inner_model.layers[0].mlp.down_proj.base_layer, bnb.nn.Linear4bit)
    batch = built.model.collate(features_for(built, sample_documents, built.backbone.tokenizer, per_task=1))
    _step(built, batch)
