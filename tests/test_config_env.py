"""Environment variables in config paths: ``$NAME``, ``${NAME}``, ``${NAME:-default}``; unset ones are errors."""

from __future__ import annotations

import pytest
import yaml

from mtpeft.config import config_from_dict, expand_env, load_config
from mtpeft.errors import ConfigError


def test_expansion_follows_the_shell(monkeypatch):
    monkeypatch.setenv("DATA_X", "/data/x")
    monkeypatch.setenv("EMPTY_X", "")
    monkeypatch.delenv("UNSET_X", raising=False)
    assert expand_env("${DATA_X}/a.txt") == "/data/x/a.txt"
    assert expand_env("$DATA_X/a.txt") == "/data/x/a.txt"
    assert expand_env("${UNSET_X:-../shared/data}/a.txt") == "../shared/data/a.txt"
    assert expand_env("${EMPTY_X:-fallback}/a") == "fallback/a"  # as ${VAR:-d} in sh: empty counts as unset
    assert expand_env("${UNSET_X:-$DATA_X}/a") == "/data/x/a"
    assert expand_env("plain/path") == "plain/path" and expand_env(None) is None
    assert expand_env("cost$5/a") == "cost$5/a"  # `$` not followed by a name is kept
    with pytest.raises(ValueError, match="environment variable UNSET_X is not set"):
        expand_env("${UNSET_X}/a")


def test_task_and_model_paths_are_expanded_and_errors_name_the_field(monkeypatch, tmp_path):
    monkeypatch.setenv("MTPEFT_SHARED_DATA", "/srv/semeval")
    monkeypatch.delenv("MTPEFT_LLAMA_3B", raising=False)
    monkeypatch.delenv("NOT_SET_ANYWHERE_X", raising=False)
    config = config_from_dict({
        "model": {"backbone": "${MTPEFT_LLAMA_3B:-/models/Llama-3.2-3B}"},
        "tasks": [{"id": "semeval2021t6_level1", "train": "${MTPEFT_SHARED_DATA:-../shared/data}/t6/train.txt",
                   "dev": "$MTPEFT_SHARED_DATA/t6/dev.txt"}],
    })
    assert config.model.backbone == "/models/Llama-3.2-3B"
    assert (config.tasks[0].train, config.tasks[0].dev) == ("/srv/semeval/t6/train.txt", "/srv/semeval/t6/dev.txt")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"id": "semeval2017t3", "train": "x", "test": "${NOT_SET_ANYWHERE_X}/t.xml"}]}))
    with pytest.raises(ConfigError, match=r"c.yaml: field 'tasks.0.test': .*environment variable NOT_SET_ANYWHERE_X is not set"):
        load_config(path)
