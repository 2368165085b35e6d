"""mtpeft.testing: locating the real data and skipping clearly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft import testing
from mtpeft.tasks.document import Document, Mention, Relation


def test_env_var_points_to_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "semeval2021t6").mkdir()
    monkeypatch.setenv(testing.ENV_VAR, str(tmp_path))
    assert testing.shared_data_dir() == tmp_path.resolve()
    assert testing.require_shared_data("semeval2021t6") == tmp_path.resolve() / "semeval2021t6"


def test_absent_data_skips_with_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(testing.ENV_VAR, str(tmp_path / "nowhere"))
    assert testing.shared_data_dir() is None
    message = r"real data folder not found at .*nowhere \(set MTPEFT_SHARED_DATA"
    with pytest.raises(pytest.skip.Exception, match=message):
        testing.require_shared_data("semeval2021t6")
    monkeypatch.setenv(testing.ENV_VAR, str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"real data 'semeval2099' not found under"):
        testing.require_shared_data("semeval2099")


def test_annotations_view_ignores_mention_ids_but_not_relation_ends() -> None:
    def doc(ids: tuple[str, str], target: int) -> Document:
        mentions = [Mention(ids[0], ((0, 1),), "A"), Mention(ids[1], ((2, 3),), "B")]
        return Document("d", "a b", mentions=mentions, relations=[Relation("r", "X", ids[0], ids[target])])

    assert testing.annotations_of([doc(("1", "2"), 1)]) == testing.annotations_of([doc(("L1", "L2"), 1)])
    assert testing.annotations_of([doc(("1", "2"), 1)]) != testing.annotations_of([doc(("1", "2"), 0)])
