"""Ranking tasks: graded relevance of each candidate of a question, and a score to order them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mtpeft.tasks.base import (
    DataFormat,
    EncodeResult,
    EncodingLoss,
    Task,
    check_documents_cover,
    pair_predictions,
    require_text,
)
from mtpeft.tasks.document import Candidate, Document
from mtpeft.tasks.encoding.alignment import tokenize
from mtpeft.tasks.encoding.ranking import fit_pair
from mtpeft.tasks.features import Features, WindowPrediction


class RankingTask(Task):
    """One :class:`Features` per (question, candidate) pair; ``labels`` are relevance grades by
    increasing relevance (the label id is the grade). ``separator`` goes between the two texts.

    ``token_offsets`` of question tokens index the question (``Document.text``); those of the
    candidate tokens index the candidate's text (``meta["candidate_start"]`` says where the
    candidate begins in ``input_ids``); separator tokens have ``(0, 0)``.
    """

    head_kind = "ranking"

    def __init__(
        self,
        id: str,
        level: int,
        labels: Sequence[str],
        data_format: DataFormat,
        separator: str = "\n\n",
        max_length: int = 512,
        stride: int = 0,
    ) -> None:
        super().__init__(id, level, labels, data_format, max_length, stride)
        self.separator = separator

    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """Pairs cut to ``max_length`` tokens (``stride`` is unused: a pair is one window).

        ``rank_label`` is ``None`` for every pair when some candidate has no label (test files).
        """
        max_length, _ = self._window_options(max_length, stride)
        separator = tokenize(self.separator, tokenizer).input_ids if self.separator else []
        labelled = all(c.label is not None for doc in documents for c in doc.candidates)
        result = EncodeResult()
        if not labelled:
            result.losses.append(
                EncodingLoss("", "unlabelled", "", "some candidates have no label: all encoded without targets")
            )
        for doc in documents:
            question = tokenize(require_text(doc, self.id), tokenizer)
            counts: Counter[str] = Counter(documents=1, candidates=len(doc.candidates))
            for c in doc.candidates:
                if labelled and c.label not in self.labels:
                    result.losses.append(
                        EncodingLoss(doc.id, "label_not_kept", c.id, f"label {c.label!r} not in {self.labels}")
                    )
                    continue
                answer = tokenize(c.text, tokenizer)
                layout = fit_pair(len(question), len(answer), len(separator), max_length)
                if layout.dropped:
                    result.losses.append(EncodingLoss(doc.id, "truncated", c.id, f"{layout.dropped} tokens cut"))
                ids = question.input_ids[: layout.question] + separator + answer.input_ids[: layout.candidate]
                offsets = (
                    question.offsets[: layout.question] + [(0, 0)] * len(separator) + answer.offsets[: layout.candidate]
                )
                result.features.append(
                    Features(
                        task=self.id,
                        doc_id=doc.id,
                        input_ids=ids,
                        token_offsets=offsets,
                        owned=(0, len(ids) - 1),
                        rank_label=self.label_id(c.label) if labelled else None,
                        group_id=doc.id,
                        candidate_id=c.id,
                        meta={"candidate_start": layout.question + len(separator)},
                    )
                )
                result.lengths.append(len(question) + len(separator) + len(answer))
                counts["pairs"] += 1
            result.counts.update(counts)
        return result

    def decode(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> list[Document]:
        """The documents with each candidate's predicted grade (argmax) and ranking score."""
        grouped = pair_predictions(self.id, predictions, features)
        check_documents_cover(self.id, documents, grouped)
        out = []
        for doc in documents:
            by_candidate = {f.candidate_id: p for f, p in grouped.get(doc.id, [])}
            result = Document(id=doc.id, text=doc.text, attributes=dict(doc.attributes), source=doc.source)
            for c in doc.candidates:
                p = by_candidate.get(c.id)
                if p is None:
                    raise ValueError(f"question {doc.id!r}: no prediction for candidate {c.id!r}")
                if p.rank_probs is None or p.rank_score is None or len(p.rank_probs) != len(self.labels):
                    raise ValueError(
                        f"question {doc.id!r}, candidate {c.id!r}: expected rank_probs per label and a rank_score"
                    )
                grade = max(range(len(self.labels)), key=lambda k: p.rank_probs[k])
                result.candidates.append(
                    Candidate(
                        id=c.id,
                        text=c.text,
                        label=self.labels[grade],
                        score=float(p.rank_score),
                        attributes=dict(c.attributes),
                    )
                )
            out.append(result)
        return out
