"""Imports run one way: the trainer -> evaluation -> model.load, never back (a circle used to close
through ``model/load.py`` importing the trainer's ``load_named``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mtpeft"


def _imports(module: str) -> set[str]:
    """Every ``mtpeft`` module a module imports, at the top or inside functions."""
    path = SRC.joinpath(*module.split(".")[1:]).with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mtpeft"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mtpeft"))
    return found


def test_model_load_imports_neither_the_trainer_nor_the_evaluation() -> None:
    imported = _imports("mtpeft.model.load")
    assert not {m for m in imported if m.startswith(("mtpeft.training.trainer", "mtpeft.evaluation"))}
    assert "mtpeft.training.trainer" not in _imports("mtpeft.evaluation.run_eval")
    assert "mtpeft.training.trainer" not in _imports("mtpeft.evaluation.subtask2")
    assert "mtpeft.model.load" in _imports("mtpeft.training.trainer")  # load_named's home


@pytest.mark.parametrize("first", ["mtpeft.model.load", "mtpeft.evaluation.run_eval", "mtpeft.training.trainer"])
def test_each_module_of_the_former_circle_imports_first(first: str) -> None:
    code = f"import {first}; from mtpeft.model.load import load_named, load_trained"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
