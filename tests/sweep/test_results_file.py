"""The committed results file on a fake sweep folder: columns by split, paired intervals, the winner,
provenance, the kept reading; the paired difference and the GPU estimate against hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from mtpeft.config import dump_config
from mtpeft.evaluation.results import BootstrapOptions
from mtpeft.evaluation.uncertainty import DocumentStats, paired_bootstrap_test, stats_metric
from mtpeft.sweep import collect, expand_sweep, prepare
from mtpeft.sweep.gpu_estimate import DataMeasure, backbone_parameters, estimate
from mtpeft.sweep.publish import write_results_file
from mtpeft.sweep.results_file import paired_difference
from mtpeft.sweep.results_markdown import NO_READING, READING_END, READING_START

MEMES = [f"m{i}" for i in range(30)]
THREADS = [f"Q{i}_R{i}" for i in range(40)]
# per configuration: (2021 T6 subtask-2 precision/recall credit per meme, 2016 T3 AP per thread), by seed
QUALITY = {"s2": 0.2, "s3a": 0.5, "s1": 0.21}


def _config(root):
    shared = "/data/not-here"
    return {
        "output_dir": str(root),
        "model": {"backbone": "tiny"},
        "strategy": {"placement": "output", "fusion": "gated", "shared_rank": 4, "private_rank": 2},
        "tasks": [
            {"id": "semeval2021t6_level1", "train": f"{shared}/training_set_task2.txt", "dev": f"{shared}/dev_set_task2.txt"},
            {"id": "semeval2021t6_level2", "train": f"{shared}/training_set_task2.txt", "dev": f"{shared}/dev_set_task2.txt"},
            {"id": "semeval2017t3", "train": f"{shared}/SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml",
             "split": {"dev_fraction": 0.2, "seed": 0}},
        ],
        "training": {"max_steps": 4, "batch_size": 2, "eval_every": 2, "tensorboard": False},
        "sweep": {"seeds": 3, "combine": "union", "strategies": ["s1", "s2", "s3a"]},
    }


def _value(label, seed, doc_index):
    """A deterministic per-document value around the configuration's quality."""
    return min(1.0, max(0.0, QUALITY[label] + 0.03 * seed + 0.2 * math.sin(doc_index * 1.7 + seed)))


def _write_run(run):
    path = run.path
    path.mkdir(parents=True, exist_ok=True)
    dump_config(run.config, path / "config.yaml")
    memes = [{"doc_id": m, "stats": {"precision_num": _value(run.label, run.seed, i), "precision_den": 1.0,
                                    "recall_num": _value(run.label, run.seed, i + 5), "recall_den": 1.0}}
             for i, m in enumerate(MEMES)]
    threads = [{"doc_id": t, "stats": {"map_num": _value(run.label, run.seed, i), "map_den": 1.0}}
               for i, t in enumerate(THREADS)]
    level = [{"doc_id": m, "stats": {"tp": 3.0, "fp": 1.0, "fn": 1.0 + run.seed}} for m in MEMES]
    rows = {"semeval2021t6": memes, "semeval2017t3": threads, "semeval2021t6_level1": level}
    metrics = {}
    for task, records in rows.items():
        folder = path / "per_document" / "dev"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        sums = {k: sum(r["stats"][k] for r in records) for k in records[0]["stats"]}
        if task == "semeval2017t3":
            metrics[task] = {"map": sums["map_num"] / sums["map_den"]}
        elif task == "semeval2021t6":
            p, r = sums["precision_num"] / len(records), sums["recall_num"] / len(records)
            metrics[task] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r), "most_frequent_f1": 0.3 + 0.01 * run.seed}
        else:
            tp, fp, fn = sums["tp"], sums["fp"], sums["fn"]
            metrics[task] = {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}
    (path / "final_metrics.json").write_text(json.dumps({"split": "dev", "step": 4, "tasks": metrics}))
    (path / "params.json").write_text(json.dumps({"trainable": 1000 + len(run.label)}))
    log = [{"step": s, "loss": 1.0, "tokens": 100 + s, "tokens_per_s": 50.0,
            "shares": {"semeval2021t6_level1": 0.25, "semeval2021t6_level2": 0.25, "semeval2017t3": 0.5}}
           for s in (1, 2, 3, 4)]
    (path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    report = {"semeval2017t3": {"documents": 303, "examples": 3030}, "semeval2021t6_level1": {"documents": 688, "examples": 689}}
    (path / "data_report.json").write_text(json.dumps(report))
    (path / "sweep_run.json").write_text(json.dumps({"attempts": [{"action": "new", "wall_s": 60.0 + run.seed}]}))


@pytest.fixture
def fake_sweep(tmp_path):
    plan = expand_sweep(_config(tmp_path / "sweep"), "configs/fake.yaml")
    prepare(plan)
    for run in plan.runs:
        _write_run(run)
    return plan


def _table(text, heading):
    """The first Markdown table after ``heading``: header cells and rows of cells."""
    block = text.split(heading, 1)[1]
    lines = [line for line in block.split("\n| system")[1].split("\n\n")[0].splitlines()]
    header = ["system", *[c.strip() for c in lines[0].strip(" |").split("|")]]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[2:]]
    return header, rows


def test_the_results_file_on_a_fake_sweep(fake_sweep, tmp_path):
    options = BootstrapOptions(n_resamples=300)
    results = collect(fake_sweep, options, report=False)
    files = write_results_file(fake_sweep, results, tmp_path / "results" / "public.md", "mtpeft sweep configs/fake.yaml",
                               options)
    text = files.md.read_text()
    record = json.loads(files.json.read_text())

    # 2021 T6: the subtask-2 row is the headline; mtpeft is in the official dev column, Volta only in test
    header, rows = _table(text, "## SemEval-2021 Task 6")
    assert header[:4] == ["system", "seeds", "dev", "test"]
    mine = {r[0]: r for r in rows if r[0].startswith("mtpeft ")}
    assert set(mine) == {"mtpeft s1", "mtpeft s2", "mtpeft s3a"}
    assert all(r[2] and not r[3] for r in mine.values())
    volta = next(r for r in rows if r[0].startswith("Volta"))
    assert volta[2] == "" and volta[3] == "0.4820"
    random_rows = [r for r in rows if r[0].startswith("random")]
    assert [(r[2], r[3]) for r in random_rows] == [("0.0070", ""), ("", "0.0095")]
    assert "Components of this row" in text and "semeval2021t6_level1" in text
    # beside it, the trivial output of the same runs (most frequent technique on their spans), per configuration
    t6 = next(s for s in record["tasks"] if s["row"] == "semeval2021t6")
    assert t6["baseline_metric"] == "most_frequent_f1"
    assert t6["baseline_what"].startswith("the most frequent training technique on each")
    assert {b["what"] for b in t6["baselines"]} == {r["what"] for r in t6["results"]}  # the configurations
    assert {b["label"]: b["mean"] for b in t6["baselines"]} == pytest.approx({k: 0.31 for k in ("s1", "s2", "s3a")})
    assert [b["values"] for b in t6["baselines"]][0] == pytest.approx([0.30, 0.31, 0.32])
    trivial = text.split("Beside a trivial output of the same runs", 1)[1].split("\n\n")[1].splitlines()[2:]
    s3a = next(r for r in t6["results"] if r["label"] == "s3a")
    assert [c.strip() for c in trivial[0].strip("|").split("|")] == [
        "s3a", f"{s3a['mean']:.4f} ± {s3a['std']:.4f}", "0.3100 ± 0.0100", f"{s3a['mean'] - 0.31:.4f}"]

    # 2016 T3: mtpeft's held-out part of train part 2 is its own column, never an official one
    header, rows = _table(text, "## SemEval-2016/2017 Task 3")
    assert header == ["system", "seeds", "mtpeft-heldout", "dev-2016", "test-2016", "test-2017"]
    for r in rows:
        filled = [i for i, c in enumerate(r[2:]) if c]
        assert len(filled) == 1
        assert (filled[0] == 0) == r[0].startswith("mtpeft ")
    kelp = next(r for r in rows if r[0].startswith("KeLP (best at SemEval-2016)"))
    assert kelp[4] == "79.19"  # MAP in percent, as the field reports it
    assert "held out: 20% of the documents of SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml (the official train-part2 split), split seed 0: 40 documents" in text

    # the numbers are the runs' numbers
    t3 = next(s for s in record["tasks"] if s["row"] == "semeval2017t3")
    by_label = {r["label"]: r for r in t3["results"]}
    for label in ("s1", "s2", "s3a"):
        values = [float(np.mean([_value(label, seed, i) for i in range(len(THREADS))])) for seed in (0, 1, 2)]
        assert by_label[label]["values"] == pytest.approx(values)
        assert by_label[label]["mean"] == pytest.approx(np.mean(values))
        assert by_label[label]["std"] == pytest.approx(np.std(values, ddof=1))
    assert [r["label"] for r in t3["results"]][0] == "s3a"

    # the winner, by how much, and whether the paired intervals separate it
    comparisons = {c["other"]: c for c in t3["comparisons"]}
    assert comparisons["s2"]["low"] > 0 and comparisons["s1"]["low"] > 0
    assert comparisons["s1"]["delta"] == pytest.approx(by_label["s3a"]["mean"] - by_label["s1"]["mean"])
    assert "s3a has the highest mean map" in text and "these documents separate them" in text

    # provenance
    prov = record["provenance"]
    assert prov["command"] == "mtpeft sweep configs/fake.yaml" and len(prov["config"]["sha256"]) == 64
    assert prov["timing"]["run_wall_s_total"] == pytest.approx(9 * 60.0 + 3 * (0 + 1 + 2))
    assert [d["path"] for d in prov["data"]][:2] == ["/data/not-here/training_set_task2.txt", "/data/not-here/dev_set_task2.txt"]
    assert "| machine |" in text and "| git commit (of the runs) |" in text

    # the reading a person writes is kept when the file is written again
    written = text.replace(NO_READING, "S3a wins 2016 T3 by a clear margin.")
    files.md.write_text(written)
    write_results_file(fake_sweep, collect(fake_sweep, options, report=False), files.md, "again", options)
    again = files.md.read_text()
    assert f"{READING_START}\nS3a wins 2016 T3 by a clear margin.\n{READING_END}" in again
    assert "Not written yet" not in again


def test_without_the_subtask2_row_the_levels_are_not_passed_off_as_subtask2(fake_sweep, tmp_path):
    for run in fake_sweep.runs:
        final = json.loads((run.path / "final_metrics.json").read_text())
        del final["tasks"]["semeval2021t6"]
        (run.path / "final_metrics.json").write_text(json.dumps(final))
    options = BootstrapOptions(n_resamples=50)
    files = write_results_file(fake_sweep, collect(fake_sweep, options, report=False), tmp_path / "r.md", "x", options)
    text = files.md.read_text()
    assert "## SemEval-2021 Task 6" not in text  # no references beside a component row
    assert "semeval2021t6_level1 is a component of semeval2021t6, whose official row is not in these runs" in text


def _stats(values, keys=("map_num", "map_den")):
    data = np.array([[v, 1.0] for v in values])
    return DocumentStats(tuple(f"d{i}" for i in range(len(values))), keys, data)


def test_paired_difference_is_paired_and_agrees_with_the_paired_test():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 50)
    a, b = [_stats(base + 0.05)], [_stats(base)]
    options = BootstrapOptions(n_resamples=400, seed=3)
    d = paired_difference(a, b, "map", options)
    assert d.delta == pytest.approx(0.05) and d.low == pytest.approx(0.05) and d.high == pytest.approx(0.05)
    assert d.p_value == paired_bootstrap_test(a, b, stats_metric("map"), n_resamples=400, seed=3).p_value
    same = paired_difference(b, b, "map", options)
    assert (same.delta, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    shuffled = DocumentStats(tuple(reversed(b[0].doc_ids)), b[0].keys, b[0].values[::-1])
    assert paired_difference(a, [shuffled], "map", options).low == pytest.approx(0.05)  # aligned by document id
    noisy = paired_difference([_stats(rng.uniform(0, 1, 50))], b, "map", options)
    assert noisy.low < noisy.delta < noisy.high


def test_gpu_estimate_counts_what_its_docstring_says(tmp_path):
    config = {
        "output_dir": str(tmp_path / "g"), "model": {"backbone": "tiny"},
        "strategy": {"placement": "output", "shared_rank": 4, "private_rank": 2},
        "tasks": [{"id": "semeval2021t6_level1", "train": "t.txt", "dev": "d.txt"},
                  {"id": "semeval2017t3", "train": "t.xml", "dev": "d.xml"}],
        "training": {"max_steps": 10, "batch_size": 2, "grad_accum": 3, "eval_every": 4},
        "evaluation": {"before_training": True},
        "sweep": {"seeds": 2, "strategies": ["s2", "s3a"]},
    }
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(config))
    measure = DataMeasure(tokens_per_example=50.0, dev_examples={"semeval2021t6_level1": 10, "semeval2017t3": 30},
                          level2_share=0.5)
    e = estimate(path, measure, backbone="llama-3.2-1b")
    n = backbone_parameters("llama-3.2-1b")
    assert 0.9e9 < n < 1.1e9  # Llama-3.2-1B: 1.24 B with its 0.26 B input embedding
    train_tokens = 10 * 2 * 3 * 50.0
    evaluations = 3 + 1  # ceil(10 / 4) + before training
    dev_tokens = 40 * 50.0
    per_seed = (train_tokens * n * 4 + evaluations * dev_tokens * n * 2) * (1 + 2)  # s2: 1 pass, s3a output: 2
    assert e.runs == 4 and e.train_tokens == 4 * train_tokens and e.eval_tokens == 4 * evaluations * dev_tokens
    assert e.flops == pytest.approx(2 * per_seed)
    assert e.hours == pytest.approx(e.flops / (989e12 * 0.2) / 3600)


def test_the_sweep_report_opens_with_the_results_files_tables_winners_and_reading(fake_sweep, tmp_path):
    """`mtpeft sweep --collect` writes the results file first, then the report that repeats it."""
    from typer.testing import CliRunner

    from mtpeft.cli.main import app
    from mtpeft.sweep.results_report import TITLE

    config = tmp_path / "fake.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path / "sweep")))
    results = tmp_path / "results" / "public.md"
    args = ["sweep", str(config), "--collect", "--resamples", "100", "--results", str(results)]
    ran = {"command": "mtpeft sweep fake.yaml --jobs 2", "wall_s": 100.0, "jobs": 2, "cpu": "X", "cores": 2}
    (tmp_path / "sweep" / "sweep_invocations.jsonl").write_text(json.dumps(ran) + "\n")
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    prov = json.loads(results.with_suffix(".json").read_text())["provenance"]
    assert prov["command"] == ran["command"] and prov["written_by"] == f"mtpeft sweep {config} --collect"
    assert f"| command | `{ran['command']}` (this file written by `mtpeft sweep {config} --collect`) |" in results.read_text()
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert report.index(TITLE) < report.index("## Runs")  # the study comes first
    record = json.loads(results.with_suffix(".json").read_text())
    for task in record["tasks"]:
        assert task["verdict"] in report  # the same winner, margin and interval as the file
    assert "Beside a trivial output of the same runs: the most frequent training technique" in report
    assert "Not written yet" in report

    results.write_text(results.read_text().replace(NO_READING, "S3a wins 2016 T3.\n\nThe model is small."))
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "S3a wins 2016 T3.\n\nThe model is small." in report and "Not written yet" not in report
    html = (tmp_path / "sweep" / "report.html").read_text()
    assert "S3a wins 2016 T3." in html and html.index("The study") < html.index('id="runs"')
