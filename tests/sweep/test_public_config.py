"""configs/public.yaml for real, shortened: 2 steps of every configuration on the real SemEval files
(tiny backbone: the embedded model would take minutes per run), ending in the results file.

Skipped with a message where the real files are absent (``$MTPEFT_SHARED_DATA``, default
``../shared/data``). Documents are limited per split so the whole sweep stays under a minute.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.config import SplitConfig
from mtpeft.sweep.results_file import file_sha256
from mtpeft.tasks.formats import semeval2017t3
from mtpeft.tasks.split import select
from mtpeft.testing import require_shared_data

REPO = Path(__file__).resolve().parents[2]
T3 = "semeval2017t3/SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"
T6 = "semeval2021t6/dev_set_task2.txt"


def test_a_two_step_public_sweep_writes_the_results_file(tmp_path, monkeypatch):
    data = require_shared_data("")
    require_shared_data(T3), require_shared_data(T6)
    monkeypatch.chdir(REPO)  # the config's default data path is relative to the repository
    monkeypatch.setenv("MTPEFT_SHARED_DATA", str(data))
    out, results = tmp_path / "public", tmp_path / "results" / "public.md"
    overrides = [f"output_dir={out}", "model.backbone=tiny", "training.max_steps=2", "training.checkpoint_every=2",
                 "training.batch_size=4", "tasks.0.limit=16", "tasks.1.limit=16", "tasks.2.limit=8"]
    result = CliRunner().invoke(app, ["sweep", "configs/public.yaml", *overrides, "--seeds", "1", "--jobs", "2",
                                      "--resamples", "200", "--no-report", "--results", str(results)])
    assert result.exit_code == 0, result.output
    labels = ["s3b", "A1", "A2", "A3", "A4"]
    assert all((out / f"{label}-seed0" / "final_metrics.json").is_file() for label in labels)

    # the 2016 T3 split: training read the train part, evaluation the held-out threads (limited to 8)
    report = json.loads((out / "A1-seed0" / "data_report.json").read_text())["semeval2017t3"]
    assert report["split"]["train_documents"] == 341 and report["split"]["dev_documents"] == 38
    documents = semeval2017t3.read(data / T3).documents
    dev = [d.id for d in select(documents, SplitConfig(dev_fraction=0.1, seed=0), "dev")][:8]
    evaluated = [json.loads(line)["doc_id"] for line in (out / "A1-seed0" / "per_document" / "dev" / "semeval2017t3.jsonl")
                 .read_text().splitlines()]
    assert evaluated == dev

    record = json.loads(results.with_suffix(".json").read_text())
    rows = {section["row"]: section for section in record["tasks"]}
    assert set(rows) == {"semeval2021t6", "semeval2017t3"}  # the subtask-2 row heads 2021 T6; levels are its components
    assert rows["semeval2021t6"]["split"]["key"] == "dev"
    assert rows["semeval2017t3"]["split"]["key"] == "mtpeft-heldout"
    for section in rows.values():
        assert sorted(r["label"] for r in section["results"]) == sorted(labels)
        assert all(len(r["seeds"]) == 1 for r in section["results"])
    prov = record["provenance"]
    assert prov["command"] == "mtpeft sweep configs/public.yaml " + " ".join(overrides) + " --seeds 1 --jobs 2"
    assert prov["machine"]["jobs"] == 2
    assert prov["machine"]["threads_per_run"] == (os.environ.get("OMP_NUM_THREADS") or str(max(1, os.cpu_count() // 2)))
    hashes = {Path(d["resolved"]).name: d["sha256"] for d in prov["data"]}
    assert hashes["dev_set_task2.txt"] == file_sha256(data / T6)
    text = results.read_text()
    assert "## What to run on a GPU with Llama-3.2-3B" in text and "GPU-hours" in text
    assert "Volta (best at the competition)" in text and "KeLP (best at SemEval-2016)" in text


def _plan(name, backbone):
    from mtpeft.sweep import load_sweep

    return load_sweep(REPO / "configs" / name, [f"model.backbone={backbone}", "output_dir=/nonexistent/x"])


def test_the_public_configs_run_the_study_and_share_data_split_and_seeds(monkeypatch):
    monkeypatch.setenv("MTPEFT_SHARED_DATA", "/data")
    cpu, gpu = _plan("public.yaml", "tiny"), _plan("public-llama-3.2-3b.yaml", "tiny")
    for plan in (cpu, gpu):
        assert plan.section.combine == "union"
        assert [r.label for r in plan.runs[::3]] == ["s3b", "A1", "A2", "A3", "A4"]
        assert {r.seed for r in plan.runs} == {0, 1, 2}
        tasks = {t.id: t for t in plan.runs[0].config.tasks}
        assert set(tasks) == {"semeval2021t6_level1", "semeval2021t6_level2", "semeval2017t3"}
        assert tasks["semeval2021t6_level1"].dev == "/data/semeval2021t6/dev_set_task2.txt"
        assert tasks["semeval2017t3"].dev is None
        assert tasks["semeval2017t3"].split.model_dump() == {"dev_fraction": 0.1, "seed": 0, "group_pattern": None}
        by_label = {r.label: r.config.strategy for r in plan.runs}
        assert (by_label["A1"].name, by_label["A2"].name, by_label["A3"].fusion, by_label["A4"].fusion) == (
            "s2", "s1", "sum", "gated")
    assert cpu.section.results.file == "results/public.md"
    assert cpu.section.results.gpu_config == "configs/public-llama-3.2-3b.yaml"
    assert [t.model_dump(include={"id", "train", "dev", "split"}) for t in cpu.runs[0].config.tasks] == \
           [t.model_dump(include={"id", "train", "dev", "split"}) for t in gpu.runs[0].config.tasks]


@pytest.mark.slow
def test_s3b_is_at_the_ablations_budget_on_the_embedded_model(monkeypatch):
    """S3b's ranks are written in public.yaml: its adapters, fusion and cross-level attention must cost
    what A1-A4 cost (within the solver's 5%) on the model it trains."""
    from mtpeft.backbone import load_backbone
    from mtpeft.model.build import build_model

    require_shared_data("")  # building reads the training files
    plan = _plan("public.yaml", "embedded")
    budget = {}
    for label in ("s3b", "A1"):
        config = next(r.config for r in plan.runs if r.label == label)
        counts = build_model(config, load_backbone("embedded")).model.parameter_counts()
        budget[label] = counts.trainable - sum(counts.heads.values())
    assert abs(budget["s3b"] / budget["A1"] - 1) <= 0.05, budget


def test_the_committed_results_file_is_this_configs_finished_sweep():
    """results/public.md was written from all 15 runs of configs/public.yaml as committed (the
    config hash ignores comments), the 2021 T6 and 2016 T3 sections are there, and it has a reading."""
    from mtpeft.sweep import load_sweep
    from mtpeft.sweep.results_file import config_sha256
    from mtpeft.sweep.results_markdown import NO_READING, existing_reading

    record = json.loads((REPO / "results" / "public.json").read_text())
    plan = load_sweep(str(REPO / "configs" / "public.yaml"), [], None)
    assert record["provenance"]["config"]["sha256"] == config_sha256(plan)
    assert record["finished"] == record["runs"] == len(plan.runs) == 15
    assert {t["row"] for t in record["tasks"]} == {"semeval2021t6", "semeval2017t3"}
    assert all(len(r["seeds"]) == 3 for t in record["tasks"] for r in t["results"])
    reading = existing_reading(REPO / "results" / "public.md")
    assert reading and reading != NO_READING
