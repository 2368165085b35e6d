"""Atomic checkpoints: round trip, crash in the middle of a save, pointers, pruning."""

from __future__ import annotations

import json

import pytest
import torch

import mtpeft.training.checkpoint as checkpoint_module
from mtpeft.training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    read_pointer,
    save_checkpoint,
    validate,
)


def _writer(text: str):
    def write(directory):
        directory.mkdir(parents=True)
        (directory / "adapter.txt").write_text(text)

    return write


def _save(root, step, value: float, **kwargs):
    param = torch.nn.Parameter(torch.full((3,), value))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.ones(3)
    optimizer.step()
    return save_checkpoint(
        root,
        step,
        tensors={"heads": {"w": torch.full((2, 2), value)}, "extra": {"s": torch.tensor([value])}},
        folders={"adapters": _writer(f"adapter {step}")},
        state={"sampler": {"steps": step}, "metric": value},
        optimizer=optimizer.state_dict(),
        **kwargs,
    )


def test_round_trip_and_pointers(tmp_path):
    root = tmp_path / "checkpoints"
    path = _save(root, 10, 1.5, best=True, metric=0.7)
    assert path == root / "step-10" and validate(path) == 10
    ckpt = load_checkpoint(root)
    assert ckpt.step == 10 and ckpt.state["sampler"] == {"steps": 10} and ckpt.state["step"] == 10
    assert torch.equal(ckpt.tensors("heads")["w"], torch.full((2, 2), 1.5))
    assert (ckpt.folder("adapters") / "adapter.txt").read_text() == "adapter 10"
    optimizer_state = ckpt.optimizer_state()
    assert optimizer_state["state"][0]["exp_avg"].shape == (3,)
    assert read_pointer(root, "best") == {"step": 10, "path": "step-10", "metric": 0.7}
    _save(root, 20, 2.5)
    assert load_checkpoint(root).step == 20 and load_checkpoint(root, "best").step == 10
    assert load_checkpoint(root / "step-10").step == 10
    with pytest.raises(CheckpointError, match="no tensors 'missing'"):
        ckpt.tensors("missing")


@pytest.mark.parametrize("crash_on", ["extra", "adapters", "state"])
def test_crash_midway_never_leaves_a_valid_checkpoint(tmp_path, monkeypatch, crash_on):
    root = tmp_path / "checkpoints"
    _save(root, 1, 1.0)

    class Crash(Exception):
        pass

    real_save_file = checkpoint_module.save_file

    def crashing_save_file(tensors, filename, *args, **kwargs):
        real_save_file(tensors, filename, *args, **kwargs)
        if crash_on == "extra" and filename.endswith("extra.safetensors"):
            raise Crash  # the file is written, the rest of the checkpoint is not

    def crashing_writer(directory):
        directory.mkdir(parents=True)
        (directory / "adapter.txt").write_text("half")
        raise Crash

    real_dumps = json.dumps

    def crashing_dumps(obj, *args, **kwargs):
        if crash_on == "state" and isinstance(obj, dict) and "sampler" in obj:
            raise Crash
        return real_dumps(obj, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "save_file", crashing_save_file)
    monkeypatch.setattr(checkpoint_module.json, "dumps", crashing_dumps)
    folders = {"adapters": crashing_writer} if crash_on == "adapters" else {"adapters": _writer("x")}
    with pytest.raises(Crash):
        save_checkpoint(
            root, 2, tensors={"heads": {"w": torch.zeros(1)}, "extra": {"s": torch.zeros(1)}}, folders=folders,
            state={"sampler": {"steps": 2}},
        )  # fmt: skip
    monkeypatch.undo()

    partial = list(root.glob(".tmp-step-2-*"))
    assert len(partial) == 1  # what a killed process leaves behind
    with pytest.raises(CheckpointError, match="COMPLETE"):
        validate(partial[0])
    assert not (root / "step-2").exists()
    assert [step for step, _ in list_checkpoints(root)] == [1]
    assert load_checkpoint(root).step == 1  # `last` still names the previous, complete checkpoint

    _save(root, 3, 3.0)  # the next save clears the leftovers
    assert not list(root.glob(".tmp-*")) and load_checkpoint(root).step == 3


def test_crash_before_the_pointer_update_keeps_the_old_last(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    _save(root, 1, 1.0)

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(checkpoint_module, "write_pointer", crash)
    with pytest.raises(RuntimeError):
        _save(root, 2, 2.0)
    monkeypatch.undo()
    assert load_checkpoint(root).step == 1  # both folders are complete; the pointer was not moved
    assert [s for s, _ in list_checkpoints(root)] == [1, 2]


def test_damaged_checkpoints_do_not_load(tmp_path):
    root = tmp_path / "checkpoints"
    path = _save(root, 5, 1.0)
    (path / "heads.safetensors").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="wrong size"):
        load_checkpoint(root)
    path = _save(root, 6, 1.0)
    (path / "COMPLETE").unlink()
    with pytest.raises(CheckpointError, match="COMPLETE"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no 'best'"):
        load_checkpoint(tmp_path / "empty", "best")


def test_resaving_a_step_replaces_it(tmp_path):
    root = tmp_path / "checkpoints"
    _save(root, 4, 1.0)
    _save(root, 4, 9.0)
    assert torch.equal(load_checkpoint(root).tensors("extra")["s"], torch.tensor([9.0]))
    assert not list(root.glob(".old-*"))


def test_keep_last_spares_best(tmp_path):
    root = tmp_path / "checkpoints"
    _save(root, 1, 1.0, best=True, metric=0.9)
    for step in (2, 3, 4):
        _save(root, step, float(step), keep_last=2)
    assert [s for s, _ in list_checkpoints(root)] == [1, 3, 4]
    assert load_checkpoint(root, "best").step == 1


def test_only_plain_data_is_saved_with_torch(tmp_path):
    with pytest.raises(TypeError, match=r"optimizer\['state'\]\[0\]: object"):
        save_checkpoint(tmp_path, 1, optimizer={"state": [object()]})
    assert not list(tmp_path.glob("step-*"))


def test_tied_weights_are_saved(tmp_path):
    weight = torch.randn(4, 4)
    save_checkpoint(tmp_path, 1, tensors={"heads": {"a": weight, "b": weight, "top": weight[:2]}, "empty": {}})
    loaded = load_checkpoint(tmp_path)
    heads = loaded.tensors("heads")
    assert torch.equal(heads["a"], weight) and torch.equal(heads["b"], weight) and torch.equal(heads["top"], weight[:2])
    assert loaded.tensors("empty") == {}
