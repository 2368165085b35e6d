"""Predictions of an (untrained) model decode into valid annotations and official files, for every task."""

from __future__ import annotations

from mtpeft.model.build import build_model
from tests.model.conftest import features_for, make_config


def test_predictions_decode_and_write_for_every_task(tiny_backbone, sample_documents, tokenizer, tmp_path):
    built = build_model(make_config("s3a"), backbone=tiny_backbone)
    built.model.eval()
    feats = features_for(built, sample_documents, tokenizer, per_task=100)
    predictions = built.model.predict(built.model.collate(feats))
    for task_id, task in built.tasks.items():
        # decoders take the input documents (relation tasks need their entities) and replace the
        # predicted layer: nothing of the gold annotation to be predicted may survive decoding
        docs = sample_documents[task_id]
        decoded = task.decode(docs, predictions[task_id], feats[task_id])
        assert [d.id for d in decoded] == [d.id for d in docs]
        for doc in decoded:
            for mention in doc.mentions:
                assert all(0 <= s < e <= len(doc.text) for s, e in mention.spans), (task_id, mention)
        out = tmp_path / task_id
        task.write(decoded, out)
        reread = task.read(out).documents
        assert [d.id for d in reread] == [d.id for d in decoded]


def test_parameter_counts_by_component(tiny_backbone):
    built = build_model(make_config("s3b"), backbone=tiny_backbone)
    counts = built.model.parameter_counts()
    trainable = sum(p.numel() for p in built.model.parameters() if p.requires_grad)
    assert counts.trainable == trainable
    assert set(counts.adapters) == {"shared", "level1", "level2"}
    assert counts.other["cross_level"] > 0
    names = built.model.components()
    assert {"adapter:shared", "adapter:level1", "fusion", "cross_level"} <= set(names)
    # each level adapter serves three of the six tasks, so all three are shared (gradients can conflict)
    assert sorted(built.model.shared_adapter_names()) == ["level1", "level2", "shared"]
