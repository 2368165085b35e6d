"""``mtpeft data stats`` on data written in each official format, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.tasks.registry import get_task
from mtpeft.tasks.stats import overlapping_mentions
from tests.tasks.conftest import clinical_document
from tests.tasks.test_relation_task import _temporal_document
from tests.tasks.test_typing_and_ranking import _meme, _thread
from mtpeft.tasks.ids import STUDY_TASKS

runner = CliRunner()


def _documents(task_id: str) -> list:
    if task_id in ("semeval2014t7", "semeval2015t14"):
        docs = [clinical_document("note1"), clinical_document("note2")]
        for d in docs:
            d.attributes["DocName"] = f"{d.id}.txt"
        return docs
    if task_id.startswith("semeval2021t6"):
        return [_meme()]
    if task_id == "semeval2016t12":
        return [_temporal_document()]
    return [_thread()]


def _write(task_id: str, tmp_path: Path) -> tuple[Path, list]:
    docs = _documents(task_id)
    path = tmp_path / (
        "data.txt" if task_id.startswith("semeval2021t6") else "data.xml" if task_id == "semeval2017t3" else "data"
    )
    get_task(task_id).write(docs, path)
    return path, docs


def _stats(*args: str) -> dict:
    result = runner.invoke(app, ["data", "stats", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


ALL = STUDY_TASKS


@pytest.mark.parametrize("task_id", ALL)
def test_stats_agree_with_an_independent_encoding(tokenizer, tmp_path: Path, task_id: str) -> None:
    path, docs = _write(task_id, tmp_path)
    stats = _stats(task_id, str(path))
    task = get_task(task_id)
    read = task.read(path).documents
    encoded = task.encode(read, tokenizer)
    assert stats["documents"] == len(docs) and stats["skipped"] == 0
    ann = stats["annotations"]
    assert ann.get("mentions", 0) == sum(len(d.mentions) for d in docs)
    assert ann.get("relations", 0) == sum(len(d.relations) for d in docs)
    assert ann.get("candidates", 0) == sum(len(d.candidates) for d in docs)
    if "mentions" in ann:
        assert ann["discontiguous_mentions"] == sum(m.is_discontiguous for d in docs for m in d.mentions)
        assert ann["overlapping_mentions"] == sum(overlapping_mentions(d) for d in docs)
    enc = stats["encoding"]
    assert enc["examples"] == len(encoded.features)
    assert enc["token_lengths"]["max"] == max(encoded.lengths)
    assert enc["losses"] == encoded.loss_counts()
    if task.head_kind in ("token", "span"):
        report = task.round_trip(read, tokenizer)
        assert enc["round_trip"]["exact"] == report.exact and enc["round_trip"]["mentions"] == report.mentions


def test_text_report(tmp_path: Path) -> None:
    path, _ = _write("semeval2014t7", tmp_path)
    result = runner.invoke(app, ["data", "stats", "semeval2014t7", str(path), "-o", "scheme=bio"])
    assert result.exit_code == 0, result.output
    for expected in ("documents: 2", "discontiguous: 10", "round trip", "discontiguous_shape", "tokens per input"):
        assert expected in result.stdout


def test_without_text_says_encoding_needs_it(tmp_path: Path) -> None:
    doc = _temporal_document()
    doc.text = None
    get_task("semeval2016t12").write([doc], tmp_path)
    stats = _stats("semeval2016t12", str(tmp_path))
    assert stats["documents_without_text"] == 1
    assert "needs the text" in stats["encoding"]["unavailable"]
    assert stats["annotations"]["relation_labels"]["CONTAINS"] == sum(r.label == "CONTAINS" for r in doc.relations)


def test_generic_task_config_file(tmp_path: Path) -> None:
    from tests.tasks.test_generic import SPANS, _write_lines

    data = _write_lines(tmp_path / "train.jsonl", SPANS)
    config = tmp_path / "task.yaml"
    config.write_text(f"id: mine\nformat: generic\nhead: span\ndata: {data}\n")
    stats = _stats(str(config), str(data), "--tokenizer", "none")
    assert stats["labels"] == ["Disorder", "Site"] and stats["annotations"]["mentions"] == 3
    assert stats["encoding"] == {"unavailable": "no tokenizer given"}


def test_lenient_lists_skipped_records(tmp_path: Path) -> None:
    path, _ = _write("semeval2014t7", tmp_path)
    pipe = path / "note1.pipe"
    pipe.write_text(pipe.read_text() + "note1.txt||Disease_Disorder||C0000000||5\n")
    strict = runner.invoke(app, ["data", "stats", "semeval2014t7", str(path)])
    assert strict.exit_code == 2 and "note1.pipe:11" in strict.output
    stats = _stats("semeval2014t7", str(path), "--lenient", "--tokenizer", "none")
    assert stats["skipped"] == 1 and "note1.pipe:11" in stats["skipped_records"][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["semeval2099", "x"], "valid choices: semeval2014t7"),
        (["semeval2021t6_level1", "/nonexistent/file.txt"], "/nonexistent/file.txt"),
        (["semeval2014t7", "x", "-o", "colour=red"], "valid options"),
        (["semeval2014t7", "x", "-o", "scheme"], "KEY=VALUE"),
    ],
)
def test_user_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["data", "stats", *args, "--tokenizer", "none"])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


SAMPLE_FOLDER = {task_id: task_id.split("_level")[0] for task_id in ALL}


@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("task_id", ALL)
def test_stats_on_the_shipped_samples(task_id: str, split: str) -> None:
    from tests.tasks.conftest import SAMPLES

    path = SAMPLES / SAMPLE_FOLDER[task_id] / split
    assert path.exists(), f"the shipped samples are missing: {path}"
    stats = _stats(task_id, str(path))
    assert stats["documents"] > 0 and stats["skipped"] == 0
    enc = stats["encoding"]
    assert enc["examples"] >= stats["documents"] and enc["token_lengths"]["max"] > 0
    if "round_trip" in enc:
        rt = enc["round_trip"]
        assert rt["exact"] + sum(rt["lost_by_kind"].values()) == rt["mentions"] > 0


@pytest.mark.parametrize(
    ("task_id", "relative"),
    [
        ("semeval2021t6_level1", "semeval2021t6/dev_set_task2.txt"),
        ("semeval2021t6_level2", "semeval2021t6/dev_set_task2.txt"),
        ("semeval2017t3", "semeval2017t3"),
        ("semeval2016t12", "semeval2016t12"),
    ],
)
def test_stats_on_the_real_files(shared_data: Path, task_id: str, relative: str) -> None:
    stats = _stats(task_id, str(shared_data / relative))
    assert stats["documents"] > 0 and stats["skipped"] == 0
    if task_id == "semeval2016t12":
        assert "needs the text" in stats["encoding"]["unavailable"]
    else:
        assert stats["encoding"]["examples"] > 0
