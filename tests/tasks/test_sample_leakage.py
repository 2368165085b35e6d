"""No dev item of the shipped samples is identical to a training item, for every task.

An item is what the model classifies: a note (2014 T7, 2015 T14, 2016 T12), a question with one of
its comments (2017 T3), a meme (2021 T6). A repeated item would score memorisation as learning.
"""

from __future__ import annotations

import pytest

from tests.tasks.test_formats_samples import READERS, SAMPLES


def _items(task: str, split: str) -> list[str]:
    documents = READERS[task](SAMPLES / task / split).documents
    if task == "semeval2017t3":
        return [f"{doc.text}\n\n{comment.text}" for doc in documents for comment in doc.candidates]
    return [doc.text for doc in documents]


@pytest.mark.parametrize("task", sorted(READERS))
def test_no_dev_item_is_a_training_item(task: str) -> None:
    train = set(_items(task, "train"))
    dev = _items(task, "dev")
    leaked = [item for item in dev if item in train]
    assert not leaked, f"{task}: {len(leaked)} of {len(dev)} dev items are training items, e.g. {leaked[0]!r}"
    assert len(dev) >= 12
