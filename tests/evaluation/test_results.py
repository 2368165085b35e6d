"""Run folders -> results table: seed grouping, labels, costs, intervals, written files, bad input."""

from __future__ import annotations

import csv
import json
import math

import pytest

from mtpeft.errors import FormatError
from mtpeft.evaluation.report.run_folder import find_runs, group_runs
from mtpeft.evaluation.results import BootstrapOptions, paired_comparisons, results_table, write_results
from tests.evaluation.synthetic_runs import f1_stats_metrics, make_run

DOCS = [(3, 1, 2), (1, 1, 0), (0, 2, 1), (4, 0, 1)]  # (tp, fp, fn) per document


def _per_doc(docs):
    return [{"doc_id": f"d{i}", "stats": {"tp": tp, "fp": fp, "fn": fn}} for i, (tp, fp, fn) in enumerate(docs)]


def test_seeds_grouped_into_mean_and_sample_std(tmp_path):
    for seed, f1 in ((0, 0.5), (1, 0.7)):
        make_run(tmp_path, f"s3a-{seed}", tasks=["a", "b"], seed=seed,
                 metrics={"a": {"f1": f1, "precision": 0.9}, "b": {"f1": 0.2}}, params={"trainable": 1234},
                 before_training={"a": {"f1": 0.1 * (seed + 1), "precision": 0.0}, "b": {"f1": 0.0}})
    make_run(tmp_path, "s2", tasks=["a", "b"], strategy="s2", metrics={"a": {"f1": 0.4}, "b": {"f1": 0.3}})
    runs, skipped = find_runs([tmp_path])
    groups = group_runs(runs)
    assert [(g.label, g.seeds) for g in groups] == [("s2", [0]), ("s3a", [0, 1])]
    rows, notes = results_table(groups)
    row = next(r for r in rows if r.task == "a" and r.label == "s3a")
    assert row.headline == "f1" and row.mean == pytest.approx(0.6)
    assert row.std == pytest.approx(math.sqrt(0.02))  # sample std of 0.5 and 0.7: sqrt(2 * 0.1^2 / 1)
    assert row.metrics["precision"] == pytest.approx((0.9, 0.0))
    assert row.before_training == pytest.approx({"f1": 0.15, "precision": 0.0})
    assert row.trainable_params == 1234
    # logged tokens/s are 100 * step for steps 5, 10, ..., 30: median (1500 + 2000) / 2
    assert row.tokens_per_s == pytest.approx(1750.0)
    assert row.peak_memory_mb == pytest.approx(80.0)  # the largest logged 50 + step
    single = next(r for r in rows if r.task == "a" and r.label == "s2")
    assert math.isnan(single.std) and single.trainable_params is None and single.ci is None
    assert notes == [] and skipped == []


def test_labels_name_what_differs_and_tasks_only_on_a_clash(tmp_path):
    for rank in (8, 16):
        make_run(tmp_path, f"r{rank}", tasks=["a", "b"], metrics={"a": {"f1": 0.5}, "b": {"f1": 0.5}},
                 strategy_options={"shared_rank": rank})
    make_run(tmp_path, "s1a", tasks=["a"], strategy="s1", metrics={"a": {"f1": 0.5}})
    make_run(tmp_path, "s1b", tasks=["b"], strategy="s1", metrics={"b": {"f1": 0.5}})
    make_run(tmp_path, "abc", tasks=["a", "b", "c"], strategy="s2", metrics={"a": {"f1": 0.5}})
    make_run(tmp_path, "ab", tasks=["a", "b"], strategy="s2", metrics={"a": {"f1": 0.5}})
    labels = sorted(g.label for g in group_runs(find_runs([tmp_path])[0]))
    assert labels == ["s1", "s1", "s2 [tasks: a+b+c]", "s2 [tasks: a+b]", "s3a (shared_rank=16)", "s3a (shared_rank=8)"]


def test_bootstrap_interval_and_consistency_note(tmp_path):
    make_run(tmp_path, "good", tasks=["a"], metrics={"a": f1_stats_metrics("", DOCS)}, per_document={"a": _per_doc(DOCS)})
    make_run(tmp_path, "off", tasks=["a"], strategy="s2", metrics={"a": {"f1": 0.1}}, per_document={"a": _per_doc(DOCS)})
    rows, notes = results_table(group_runs(find_runs([tmp_path])[0]), BootstrapOptions(n_resamples=300, seed=1))
    good = next(r for r in rows if r.label == "s3a")
    assert good.ci.estimate == pytest.approx(f1_stats_metrics("", DOCS)["f1"])
    assert good.ci.low <= good.mean <= good.ci.high and good.ci.low < good.ci.high
    expected = f1_stats_metrics("", DOCS)["f1"]  # 2 * 8 / (2 * 8 + 4 + 4)
    assert notes == [f"s2 / a: per-document stats give f1={expected:.6f} but final_metrics.json gives 0.100000"]
    rows, notes = results_table(group_runs(find_runs([tmp_path])[0]), bootstrap=None)
    assert all(r.ci is None for r in rows) and notes == []


def test_paired_comparison_of_the_best_against_the_rest(tmp_path):
    worse = [(tp - 1 if tp else 0, fp + 1, fn + 1) for tp, fp, fn in DOCS]
    make_run(tmp_path, "best", tasks=["a"], metrics={"a": f1_stats_metrics("", DOCS)}, per_document={"a": _per_doc(DOCS)})
    make_run(tmp_path, "worse", tasks=["a"], strategy="s2", metrics={"a": f1_stats_metrics("", worse)},
             per_document={"a": _per_doc(worse)})
    groups = group_runs(find_runs([tmp_path])[0])
    options = BootstrapOptions(n_resamples=300)
    rows, _ = results_table(groups, options)
    comparisons, notes = paired_comparisons(groups, rows, options)
    assert notes == [] and len(comparisons) == 1
    (c,) = comparisons
    assert (c.best, c.other, c.metric) == ("s3a", "s2", "f1")
    assert c.test.delta == pytest.approx(f1_stats_metrics("", DOCS)["f1"] - f1_stats_metrics("", worse)["f1"])
    assert 0.0 <= c.test.p_value < 0.5


def test_write_results(tmp_path):
    for seed, f1 in ((0, 0.5), (1, 0.7)):
        make_run(tmp_path / "runs", f"s-{seed}", tasks=["a"], seed=seed, metrics={"a": {"f1": f1}}, params={"trainable": 10})
    make_run(tmp_path / "runs", "one", tasks=["a"], strategy="s2", metrics={"a": {"f1": 0.3}})
    rows, _ = results_table(group_runs(find_runs([tmp_path / "runs"])[0]))
    paths = write_results(rows, tmp_path / "out")
    with paths["csv"].open() as handle:
        table = list(csv.DictReader(handle))
    assert [(r["configuration"], r["seeds"], r["metric"]) for r in table] == [("s2", "0", "f1"), ("s3a", "0 1", "f1")]
    assert float(table[1]["mean"]) == pytest.approx(0.6) and table[1]["trainable_params"] == "10"
    assert table[0]["std"] == "" and table[0]["ci_low"] == ""
    records = json.loads(paths["json"].read_text())
    assert records[0]["std"] is None and records[1]["metrics"]["f1"]["mean"] == pytest.approx(0.6)
    markdown = paths["md"].read_text()
    assert "| a | s3a | 2 | f1 | 0.6000 ± 0.1414 |" in markdown and "0.3000 (1 seed)" in markdown


def test_unfinished_runs_are_skipped_and_counted(tmp_path):
    make_run(tmp_path, "done", tasks=["a"], metrics={"a": {"f1": 0.5}})
    make_run(tmp_path, "running", tasks=["a"], metrics={}, finished=False)
    runs, skipped = find_runs([tmp_path])
    assert [r.path.name for r in runs] == ["done"]
    assert len(skipped) == 1 and skipped[0].file.endswith("running") and "final_metrics.json" in skipped[0].reason


def test_bad_run_folders_name_the_file(tmp_path):
    with pytest.raises(FormatError, match="no config.yaml"):
        find_runs([tmp_path])
    with pytest.raises(FormatError, match="not a folder"):
        find_runs([tmp_path / "missing"])
    run = make_run(tmp_path, "r", tasks=["a"], metrics={"a": {"f1": 0.5}})
    (run / "final_metrics.json").write_text(json.dumps({"split": "dev", "tasks": {"a": {"f1": "high"}}}))
    with pytest.raises(FormatError, match=r"final_metrics\.json \(tasks\.a\): metrics must map names to numbers"):
        find_runs([run])
    (run / "final_metrics.json").write_text(json.dumps({"split": "dev", "tasks": {"a": {"f1": 0.5}}}))
    (run / "train_log.jsonl").write_text('{"step": 1}\n{"step": \n')
    with pytest.raises(FormatError, match=r"train_log\.jsonl:2: invalid JSON"):
        find_runs([run])
    (run / "train_log.jsonl").unlink()
    (run / "config.yaml").write_text("seed: 0\ntasks: [{id: a}]\n")
    with pytest.raises(FormatError, match=r"config\.yaml \(strategy\.name\): missing strategy name"):
        find_runs([run])


def test_sweep_folders_are_searched_but_not_inside_a_run(tmp_path):
    make_run(tmp_path / "sweep" / "s3a", "seed0", tasks=["a"], metrics={"a": {"f1": 0.5}})
    inner = tmp_path / "sweep" / "s3a" / "seed0" / "eval" / "step-3"
    inner.mkdir(parents=True)
    (inner / "config.yaml").write_text("not: a run\n")  # e.g. a copy inside a run folder: not a run of its own
    runs, skipped = find_runs([tmp_path / "sweep", tmp_path / "sweep" / "s3a" / "seed0"])
    assert [r.path.name for r in runs] == ["seed0"] and skipped == []


def test_repeated_seed_is_noted_and_missing_headline_is_an_error(tmp_path):
    make_run(tmp_path / "one", "copy1", tasks=["a"], metrics={"a": {"f1": 0.5}})
    make_run(tmp_path / "one", "copy2", tasks=["a"], metrics={"a": {"f1": 0.5}})
    _, notes = results_table(group_runs(find_runs([tmp_path / "one"])[0]), bootstrap=None)
    assert notes == ["s3a: the same seed appears in several folders [0, 0]; each counts"]
    make_run(tmp_path / "two", "r", tasks=["semeval2017t3"], metrics={"semeval2017t3": {"f1": 0.5}})
    with pytest.raises(FormatError, match=r"final_metrics\.json \(tasks\.semeval2017t3\): no headline metric 'map'"):
        results_table(group_runs(find_runs([tmp_path / "two"])[0]), bootstrap=None)
