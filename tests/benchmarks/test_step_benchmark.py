"""The step benchmark runs end to end on the tiny model and reports every variant and target."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from mtpeft.testing import shared_data_dir

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step.py"


@pytest.fixture
def step(monkeypatch):
    """The script as a module, leaving the session's environment, path and modules as they were."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the script sets it by default; restored after
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("benchmark_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for name in set(sys.modules) - before:
        if name in ("measure", "variants", "targets"):
            del sys.modules[name]


def test_unknown_variant_names_are_refused(step, capsys):
    for option in ("--only", "--profile"):
        with pytest.raises(SystemExit):
            step.parse_args(["--model", "tiny", option, "s3a_layer", "bogus"])
        assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_benchmark_measures_every_variant_and_target(step, tmp_path):
    out = tmp_path / "bench.json"
    # --threads 0 keeps torch's thread count (the script's default of 1 would outlive the test)
    argv = ["--model", "tiny", "--repeats", "2", "--batch", "6", "--seq", "8", "--threads", "0", "--json", str(out),
            "--workload-batch", "6", "--workload-steps", "1"]
    assert step.main(argv) == 0
    result = json.loads(out.read_text())

    expected = {"floor", "peer", "peer_pair", "s2", "s3a_layer", "s3a_output", "s3b", "s5", "mixed", "loop",
                "pcgrad", "predict", "bare", "peer_fwd"}
    workload = {"workload_padded", "workload_packed", "workload_task_rows"}
    if shared_data_dir() is None:  # the public-data variants say why they are missing
        assert "public data is not at" in result["facts"]["workload_skipped"]
    else:
        expected |= workload
    assert set(result["variants"]) == expected and expected <= set(step.VARIANTS)
    for name, variant in result["variants"].items():
        assert len(variant["seconds"]) == 2 and min(variant["seconds"]) > 0, name
        assert variant["tokens"] > 0 and variant["tokens_per_s"] > 0, name
    assert result["variants"]["mixed"]["tokens"] == result["variants"]["loop"]["tokens"] == 6 * 8
    assert result["variants"]["predict"]["tokens"] == result["variants"]["bare"]["tokens"] == 2 * 6 * 8

    targets = {t["name"]: t for t in result["targets"]}
    assert all(t["value"] is not None and t["value"] > 0 for t in targets.values())
    if workload <= expected:
        measured = {name: result["variants"][name] for name in workload}
        assert len({m["tokens"] for m in measured.values()}) == 1  # the same steps, counted in real tokens
        shares = {name: m["real_token_share"] for name, m in measured.items()}
        assert 0 < shares["workload_padded"] <= shares["workload_task_rows"] <= 1
        assert shares["workload_padded"] < shares["workload_packed"] <= 1
        assert targets["workload: packed real-token share"]["value"] == shares["workload_packed"]
        assert targets["workload: packed real tokens/s / padded real tokens/s"]["value"] > 0
    gradient = result["facts"]["pcgrad_gradient_memory"]
    assert len(gradient["per_task_bytes"]) == len(result["facts"]["tasks"])
    assert set(gradient["per_task_bytes"].values()) == {gradient["shared_parameter_bytes"]}
    s5 = targets["S5 frozen-weight bytes / float32 backbone bytes"]["value"]
    assert 0 < s5 < 1  # the 4-bit linear layers are smaller; the tiny model is mostly embedding
    assert result["command"].startswith("python benchmarks/step.py --model tiny")

    spec = importlib.util.spec_from_file_location("benchmark_render", SCRIPT.parent / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = render.render(result, before=result)
    rows = {line.split(" | ")[0].lstrip("| ") for line in text.splitlines() if line.startswith("| ")}
    assert expected | {t["name"] for t in result["targets"]} <= rows
    peer = result["variants"]["peer"]["spread_s"]["median"]
    s3a = result["variants"]["s3a_layer"]["spread_s"]["median"]
    assert f"| s3a_layer | {result['variants']['s3a_layer']['tokens_per_s']:.0f} | {s3a:.2f} |" in text
    assert f"| {s3a / peer:.2f} |" in text  # the x peer column is computed from the medians


def test_workload_variants_are_skipped_with_a_message_without_the_public_data(step, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTPEFT_SHARED_DATA", str(tmp_path))  # a folder without the SemEval files
    out = tmp_path / "bench.json"
    argv = ["--model", "tiny", "--repeats", "1", "--threads", "0", "--only", "workload_padded", "workload_packed",
            "--json", str(out)]
    assert step.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["variants"] == {} and "workload variants skipped" in capsys.readouterr().out
    assert "semeval2021t6/training_set_task2.txt" in result["facts"]["workload_skipped"]
