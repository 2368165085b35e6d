"""Entity-level P/R/F1 of token tag sequences, computed by ``seqeval`` itself.

For the token-head tasks (2014 T7, 2021 T6 level 1) this is the usual CoNLL-style view of
tagging quality, next to (never instead of) the task's official character-level metric.
``seqeval``'s default mode is the conlleval-compatible one (an ``I-X`` after ``O`` starts an
entity); ``strict=True`` uses its strict mode with an explicit scheme (IOB2 by default), where
such ill-formed chunks do not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqeval import metrics as seqeval_metrics
from seqeval import scheme as seqeval_scheme

_SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")


def entity_scores(
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    *,
    strict: bool = False,
    scheme: str = "IOB2",
) -> dict[str, float]:
    """Micro entity P/R/F1 over sentences of tags, plus ``f1:<type>`` per entity type.

    ``gold_tags[i]`` and ``pred_tags[i]`` tag the same tokens, so their lengths must match
    (a ``ValueError`` names the first sentence that differs). Undefined ratios are 0.
    """
    if len(gold_tags) != len(pred_tags):
        raise ValueError(f"{len(gold_tags)} gold sentences but {len(pred_tags)} predicted ones")
    for index, (gold, pred) in enumerate(zip(gold_tags, pred_tags)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {index}: {len(gold)} gold tags but {len(pred)} predicted tags")
    if scheme not in _SCHEMES:
        raise ValueError(f"unknown tagging scheme {scheme!r}; valid choices: {', '.join(_SCHEMES)}")
    y_true = [list(tags) for tags in gold_tags]
    y_pred = [list(tags) for tags in pred_tags]
    options: dict = {"zero_division": 0}
    if strict:
        options.update(mode="strict", scheme=getattr(seqeval_scheme, scheme))
    scores = {
        "precision": float(seqeval_metrics.precision_score(y_true, y_pred, **options)),
        "recall": float(seqeval_metrics.recall_score(y_true, y_pred, **options)),
        "f1": float(seqeval_metrics.f1_score(y_true, y_pred, **options)),
    }
    report = seqeval_metrics.classification_report(y_true, y_pred, output_dict=True, **options)
    for name, row in report.items():
        if not name.endswith(" avg"):
            scores[f"f1:{name}"] = float(row["f1-score"])
    return scores
