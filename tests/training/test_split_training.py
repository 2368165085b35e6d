"""A task with `split:` trains on one part of its file and is evaluated on the other (tiny model, samples)."""

from __future__ import annotations

import json

from mtpeft.config import SplitConfig, config_from_dict
from mtpeft.evaluation.run_eval import evaluate_run
from mtpeft.samples import sample_path
from mtpeft.tasks.formats import semeval2017t3
from mtpeft.tasks.split import select
from mtpeft.training.run import train


def test_training_reads_the_train_part_and_evaluation_the_held_out_part(tmp_path):
    path = sample_path("semeval2017t3", "train")
    split = {"dev_fraction": 0.25, "seed": 3}
    config = config_from_dict({
        "output_dir": str(tmp_path / "run"), "model": {"backbone": "tiny"}, "strategy": {"name": "s2"},
        "tasks": [{"id": "semeval2017t3", "train": str(path), "split": split, "options": {"max_length": 48}}],
        "training": {"max_steps": 1, "batch_size": 2, "eval_every": 10, "checkpoint_every": 1, "tensorboard": False},
    })
    train(config)
    run = tmp_path / "run"
    documents = semeval2017t3.read(path).documents
    dev_ids = [d.id for d in select(documents, SplitConfig(**split), "dev")]
    train_ids = [d.id for d in select(documents, SplitConfig(**split), "train")]
    assert len(dev_ids) == 10 and len(train_ids) == 30

    report = json.loads((run / "data_report.json").read_text())["semeval2017t3"]
    assert report["documents"] == 30 and report["examples"] == sum(len(d.candidates) for d in documents if d.id in train_ids)
    assert report["split"] == {"dev_fraction": 0.25, "seed": 3, "group_pattern": None, "units": 40, "dev_units": 10,
                               "documents": 40, "dev_documents": 10, "train_documents": 30}

    scored = [json.loads(line)["doc_id"] for line in (run / "per_document" / "dev" / "semeval2017t3.jsonl").read_text().splitlines()]
    assert scored == dev_ids  # exactly the held-out threads, scored against a gold copy of them
    gold = (run / "eval" / "step-1" / "dev" / "semeval2017t3" / "gold" / "gold.relevancy").read_text().split()
    assert {line for line in gold[::5]} == set(dev_ids)  # `qid cid rank score label` per comment

    final = json.loads((run / "final_metrics.json").read_text())["tasks"]["semeval2017t3"]
    again = evaluate_run(run, "dev", pointer="last")  # `mtpeft evaluate`: the same split, the same documents
    assert [d.id for d in again.tasks["semeval2017t3"].documents] == dev_ids
    assert again.tasks["semeval2017t3"].metrics["map"] == final["map"]
