"""``score()`` dispatch and the ``mtpeft score`` command: JSON keys, table, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.errors import ConfigError
from mtpeft.evaluation.score import HEADLINE_KEYS, SCORERS, score


def _invoke(args: list[str]):
    # a Typer app with a single registered command runs it without its name
    prefix = ["score"] if len(app.registered_commands) + len(app.registered_groups) > 1 else []
    return CliRunner().invoke(app, prefix + args)


def test_every_task_has_a_scorer_and_headline_keys() -> None:
    assert set(SCORERS.names()) == set(HEADLINE_KEYS)


def test_unknown_task_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid choices: semeval2014t7, semeval2015t14"):
        score("semeval2099", tmp_path, tmp_path)


@pytest.mark.parametrize("task", ["semeval2021t6", "semeval2021t6_level1", "semeval2021t6_level2"])
def test_json_output_has_the_promised_keys(task: str, shared_data: Path) -> None:
    dev = shared_data / "semeval2021t6" / "dev_set_task2.txt"
    result = _invoke([task, "--gold", str(dev), "--pred", str(dev), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(HEADLINE_KEYS[task]) <= set(scores)
    assert scores[HEADLINE_KEYS[task][-1]] == 1.0  # f1 (level 2: oracle_span_f1)


def test_json_keys_for_temporal_and_ranking(shared_data: Path, tmp_path: Path) -> None:
    gold = shared_data / "semeval2016t12"
    scores = json.loads(_invoke(["semeval2016t12", "--gold", str(gold), "--pred", str(gold), "--json"]).stdout)
    assert set(HEADLINE_KEYS["semeval2016t12"]) <= set(scores)
    xml = shared_data / "semeval2017t3" / "SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"
    pred = tmp_path / "pred.txt"
    pred.write_text("Q1 Q1_C1 1 0.5 true\n", encoding="utf-8")
    result = _invoke(["semeval2017t3", "--gold", str(xml), "--pred", str(pred), "--json"])
    assert result.exit_code == 2  # a one-line prediction file does not cover the gold
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("mtpeft: error: ")


def test_table_output_and_disorder_keys(tmp_path: Path) -> None:
    for side in ("gold", "pred"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "n1.pipe").write_text("n1.txt||Disease_Disorder||C0000001||0||5\n", encoding="utf-8")
    for task in ("semeval2014t7", "semeval2015t14"):
        if task == "semeval2015t14":
            for side in ("gold", "pred"):
                (tmp_path / side / "n1.pipe").write_text("n1.txt|0-5|C0000001\n", encoding="utf-8")
        args = [task, "--gold", str(tmp_path / "gold"), "--pred", str(tmp_path / "pred")]
        scores = json.loads(_invoke([*args, "--json"]).stdout)
        assert set(HEADLINE_KEYS[task]) <= set(scores)
        assert scores["strict_f1"] == scores["relaxed_f1"] == 1.0
        table = _invoke(args).stdout
        assert table.splitlines()[0] == task
        assert table.splitlines()[1].split() == ["strict_precision", "1.0000"]


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    result = _invoke(["semeval2021t6_level2", "--gold", str(tmp_path / "nope.txt"), "--pred", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"mtpeft: error: {tmp_path / 'nope.txt'}: the gold path does not exist; expected an existing file or folder"
    )
