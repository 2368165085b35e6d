"""The shipped 2014 T7 / 2015 T14 samples make CUIs learnable as in real notes (issue 13)."""

from __future__ import annotations

from collections import defaultdict

import pytest

from mtpeft.samples import sample_path
from mtpeft.tasks.normalisation import CUI_LESS, mention_text
from mtpeft.tasks.registry import get_task
from mtpeft.tasks.stats import cui_stats

AMBIGUOUS_FORMS = {"mi", "ms"}  # abbreviations whose CUI the sentence decides


@pytest.mark.parametrize("task_id", ["semeval2014t7", "semeval2015t14"])
def test_samples_map_forms_to_cuis_with_a_few_ambiguous_and_unseen_ones(task_id: str) -> None:
    task = get_task(task_id, normalise=False)
    splits = {split: task.read(sample_path(task_id, split)).documents for split in ("train", "dev")}
    cuis_of: dict[str, set[str]] = defaultdict(set)
    for docs in splits.values():
        for doc in docs:
            for m in doc.mentions:
                cuis_of[mention_text(doc.text, m.spans)].add(m.attributes["CUI"])
    ambiguous = {form for form, cuis in cuis_of.items() if len(cuis) > 1}
    assert ambiguous and ambiguous <= AMBIGUOUS_FORMS  # every other form has one CUI across documents
    for split, docs in splits.items():
        share = cui_stats(docs)["cui_less_share"]
        assert 0.2 <= share <= 0.35, (split, share)  # ShARe: roughly a quarter to a third
    train_forms = {mention_text(d.text, m.spans) for d in splits["train"] for m in d.mentions}
    dev_forms = {mention_text(d.text, m.spans) for d in splits["dev"] for m in d.mentions}
    assert dev_forms - train_forms  # the lexicon cannot know everything
    vs = cui_stats(splits["dev"], splits["train"])["vs_training"]
    assert vs["unseen_cuis"] >= 1 and vs["classifier_ceiling"] < 1.0
    assert any(CUI_LESS in cuis for cuis in cuis_of.values())
