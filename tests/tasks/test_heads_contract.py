"""The contract with the heads: every task's Features collate, train and decode through its head."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mtpeft.heads.base import create_task_head  # noqa: E402
from mtpeft.tasks.registry import get_task  # noqa: E402
from tests.tasks.test_data_stats import _documents  # noqa: E402
from mtpeft.tasks.ids import STUDY_TASKS

ALL = STUDY_TASKS


@pytest.mark.parametrize("task_id", ALL)
@pytest.mark.parametrize("max_length", [512, 24])
def test_features_go_through_the_head_and_back(tokenizer, task_id: str, max_length: int) -> None:
    import mtpeft.heads.ranking  # noqa: F401  (registers the head kinds)
    import mtpeft.heads.relation  # noqa: F401
    import mtpeft.heads.span  # noqa: F401
    import mtpeft.heads.token  # noqa: F401

    torch.manual_seed(0)
    task = get_task(task_id, max_length=max_length)
    documents = _documents(task_id)
    features = task.encode(documents, tokenizer).features
    head = create_task_head(task.head_kind, hidden_size=16, num_labels=len(task.labels), **task.head_options())
    batch = head.collate(features, pad_token_id=0)
    hidden = torch.randn(*batch["input_ids"].shape, 16)
    output = head(hidden, batch)
    assert output.loss is not None and torch.isfinite(output.loss)
    head.eval()
    predictions = head.decode(head(hidden, batch), batch, features)
    decoded = task.decode(documents, predictions, features)
    assert [d.id for d in decoded] == [d.id for d in documents]
    for doc, source in zip(decoded, documents):
        if task_id == "semeval2016t12":  # entities are inputs, relations predictions
            assert doc.mentions == source.mentions
            ids = {m.id for m in source.mentions}
            assert all(r.label in task.labels and {r.source, r.target} <= ids for r in doc.relations)
            continue
        for m in doc.mentions:  # predicted mentions are valid, ordered fragments of the text
            assert all(0 <= s < e <= len(source.text) for s, e in m.spans)
            assert all(b[0] >= a[1] for a, b in zip(m.spans, m.spans[1:]))
            assert m.label in getattr(task, "types", task.labels)
        for c in doc.candidates:
            assert c.label in task.labels and 0.0 <= c.score <= 1.0
