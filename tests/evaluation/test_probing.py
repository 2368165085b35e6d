"""Linear probes: the fitting is right, and a trained run gets a probing table."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.evaluation.probing import fit_linear_probe
from mtpeft.training.run import train
from tests.training.test_fit import make_config


def test_probe_separates_linearly_separable_classes():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=generator) * 4
    y = torch.arange(90) % 3
    x = centres[y] + 0.1 * torch.randn(90, 8, generator=generator)
    probe = fit_linear_probe(x, y, 3)
    assert (probe(x).argmax(-1) == y).all()


def test_probe_cannot_beat_chance_on_noise():
    generator = torch.Generator().manual_seed(1)
    x_train, x_dev = torch.randn(200, 4, generator=generator), torch.randn(400, 4, generator=generator)
    y_train = torch.randint(0, 2, (200,), generator=generator)
    y_dev = torch.randint(0, 2, (400,), generator=generator)
    probe = fit_linear_probe(x_train, y_train, 2)
    accuracy = float((probe(x_dev).argmax(-1) == y_dev).float().mean())
    assert 0.4 < accuracy < 0.6


def test_probe_command_writes_the_table(tmp_path):
    run = tmp_path / "run"
    train(make_config(run, tasks=("semeval2014t7", "semeval2017t3", "semeval2016t12"), max_steps=2))
    result = CliRunner().invoke(app, ["probe", str(run), "--checkpoint", "last", "--max-examples", "12"])
    assert result.exit_code == 0, result.output
    table = json.loads((run / "probing.json").read_text())
    expected_rows = {"shared", "majority class (floor)"} | {f"{k}:{t}" for k in ("private", "fused") for t in ("semeval2014t7", "semeval2017t3", "semeval2016t12")}
    assert set(table) == expected_rows
    for row in table.values():
        assert set(row) == {"semeval2014t7", "semeval2017t3"}  # the relation task is listed as not probed
        assert all(0.0 <= v <= 1.0 for v in row.values())
    details = json.loads((run / "probing_details.json").read_text())
    assert "semeval2016t12" in details["not_probed"]
