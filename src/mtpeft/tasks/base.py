"""What a task is: its level, head kind, labels, reader/writer, encoder and decoder.

A :class:`Task` turns :class:`~mtpeft.tasks.document.Document` objects into model inputs
(:class:`~mtpeft.tasks.features.Features`, one per window) and model outputs
(:class:`~mtpeft.tasks.features.WindowPrediction`) back into documents in the form its reader
gives, so its writer can write the official format. Every annotation the encoder cannot carry
is listed in :class:`EncodeResult.losses`, never dropped silently.

Label ids index ``Task.labels``. For span and relation tasks the labels do NOT include the
"no span" / "no relation" class: the heads add it as their last column.
"""

from __future__ import annotations

import copy
import importlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.registry import Registry
from mtpeft.tasks.document import Document, ReadResult
from mtpeft.tasks.encoding.windows import check_window_options
from mtpeft.tasks.features import Features, WindowPrediction

HEAD_KINDS = ("token", "span", "relation", "ranking")


class DataFormat(Protocol):
    """A reader and a writer of one file format."""

    def read(self, path: str | Path, *, lenient: bool = False) -> ReadResult: ...

    def write(self, documents: Iterable[Document], path: str | Path) -> None: ...


class OfficialFormat:
    """The reader/writer module ``mtpeft.tasks.formats.<name>``, imported on first use.

    ``read_options`` are extra keyword arguments of the module's ``read`` (e.g. ``techniques``).
    """

    def __init__(self, name: str, read_options: dict[str, object] | None = None) -> None:
        self.name = name
        self.read_options = dict(read_options or {})

    def _module(self):
        return importlib.import_module(f"mtpeft.tasks.formats.{self.name}")

    def read(self, path: str | Path, *, lenient: bool = False) -> ReadResult:
        return self._module().read(path, lenient=lenient, **self.read_options)

    def write(self, documents: Iterable[Document], path: str | Path) -> None:
        self._module().write(documents, path)

    def __repr__(self) -> str:
        return f"OfficialFormat({self.name!r})"


class MissingTextError(MtpeftError):
    """A document has no text (e.g. Anafora annotations without the licensed note)."""


@dataclass
class EncodingLoss:
    """An annotation the encoder could not carry (or carried only approximately).

    ``kind`` is one of: ``overlap``, ``discontiguous_shape``, ``token_boundary`` (token
    schemes); ``span_too_long``, ``window_boundary``, ``unlinkable`` (span); ``pair_outside_window``,
    ``entity_outside_window``, ``unknown_entity``, ``label_not_kept`` (relation);
    ``truncated`` (ranking, text cut, label kept); ``cui_outside_window`` (a disorder no window
    holds whole: no CUI target); ``empty_document``.
    """

    doc_id: str
    kind: str
    item: str
    detail: str

    def __str__(self) -> str:
        return f"{self.doc_id} {self.item}: {self.kind} ({self.detail})"


@dataclass
class EncodeResult:
    """Features of a list of documents and a report of what the encoding lost.

    ``counts`` says what was encoded (documents, windows, mentions, gold pairs, ...);
    ``lengths`` is the number of tokens of each document (each question/candidate pair for
    ranking) before windowing.
    """

    features: list[Features] = field(default_factory=list)
    losses: list[EncodingLoss] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)

    def loss_counts(self) -> dict[str, int]:
        """Number of losses of each kind."""
        return dict(sorted(Counter(loss.kind for loss in self.losses).items()))


class Task(ABC):
    """One task: id, level (1 or 2), head kind, labels, format, encoder and decoder.

    ``max_length`` is the window size in tokens and ``stride`` the overlap of consecutive
    windows (Hugging Face's meaning; ``None``: a quarter of ``max_length``); subclasses add their
    own options.
    """

    head_kind: str = ""

    def __init__(
        self,
        id: str,
        level: int,
        labels: Sequence[str],
        data_format: DataFormat,
        max_length: int = 512,
        stride: int | None = None,
    ) -> None:
        stride = max_length // 4 if stride is None else stride
        if level not in (1, 2):
            raise ConfigError(f"task {id!r}: level must be 1 or 2, got {level}")
        if len(set(labels)) != len(labels) or not labels:
            raise ConfigError(f"task {id!r}: labels must be a non-empty list without repeats, got {list(labels)}")
        check_window_options(max_length, stride)
        self.id = id
        self.level = level
        self.labels = list(labels)
        self.format = data_format
        self.max_length = max_length
        self.stride = stride

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(id={self.id!r}, level={self.level}, head_kind={self.head_kind!r}, labels={len(self.labels)})"

    def label_id(self, label: str) -> int:
        return self.labels.index(label)

    def read(self, path: str | Path, lenient: bool = False) -> ReadResult:
        """Read documents from ``path`` in this task's format (lenient: skip and list bad records)."""
        return self.format.read(path, lenient=lenient)

    def write(self, documents: Iterable[Document], path: str | Path) -> None:
        """Write documents to ``path`` in this task's format."""
        self.format.write(documents, path)

    def head_options(self) -> dict[str, object]:
        """Options the head must share with the encoder (e.g. ``max_span_len``)."""
        return {}

    @abstractmethod
    def encode(
        self,
        documents: Sequence[Document],
        tokenizer: object,
        max_length: int | None = None,
        stride: int | None = None,
    ) -> EncodeResult:
        """Features for ``documents`` (fast tokenizer needed); losses listed in the result."""

    @abstractmethod
    def decode(
        self, documents: Sequence[Document], predictions: Sequence[WindowPrediction], features: Sequence[Features]
    ) -> list[Document]:
        """Documents carrying the predicted annotations, in the form this task's reader gives.

        ``features`` are the ones ``encode`` made for ``documents`` (their token offsets map
        predictions back to characters); ``predictions`` holds one per feature, any order.
        """

    def _window_options(self, max_length: int | None, stride: int | None) -> tuple[int, int]:
        if max_length is None:
            max_length, stride = self.max_length, self.stride if stride is None else stride
        elif stride is None:
            stride = max_length // 4
        check_window_options(max_length, stride)
        return max_length, stride


def require_text(doc: Document, task_id: str) -> str:
    """The document's text, or :class:`MissingTextError` saying why encoding needs it."""
    if doc.text is None:
        where = f" ({doc.source})" if doc.source else ""
        raise MissingTextError(
            f"document {doc.id!r}{where} has no text: task {task_id!r} can read and score its annotations "
            "but encoding for a model needs the text (for 2016 T12, the licensed THYME note next to the XML)"
        )
    return doc.text


def without_annotations(doc: Document) -> Document:
    """A copy of ``doc`` with its text and attributes but no mentions, relations or candidates."""
    out = copy.copy(doc)
    out.attributes = dict(doc.attributes)
    out.mentions, out.relations, out.candidates = [], [], []
    return out


def pair_predictions(
    task_id: str, predictions: Sequence[WindowPrediction], features: Sequence[Features]
) -> dict[str, list[tuple[Features, WindowPrediction]]]:
    """Group ``(features, prediction)`` by document, windows in order; every window needs a prediction.

    Raises ``ValueError`` on a prediction of another task, a duplicate, or a window without one,
    so a partial evaluation cannot pass for a complete one.
    """
    by_key: dict[tuple[str, int, str | None], WindowPrediction] = {}
    for p in predictions:
        if p.task != task_id:
            raise ValueError(f"a prediction of task {p.task!r} given to task {task_id!r}")
        key = (p.doc_id, p.window, p.candidate_id)
        if key in by_key:
            raise ValueError(f"two predictions for document {p.doc_id!r}, window {p.window}")
        by_key[key] = p
    grouped: dict[str, list[tuple[Features, WindowPrediction]]] = {}
    for f in features:
        key = (f.doc_id, f.window, f.candidate_id)
        if key not in by_key:
            raise ValueError(f"no prediction for document {f.doc_id!r}, window {f.window} of task {task_id!r}")
        grouped.setdefault(f.doc_id, []).append((f, by_key.pop(key)))
    if by_key:
        doc_id, window, _ = next(iter(by_key))
        raise ValueError(f"a prediction for document {doc_id!r}, window {window} matches no features")
    for pairs in grouped.values():
        pairs.sort(key=lambda pair: pair[0].window)
    return grouped


def check_documents_cover(task_id: str, documents: Sequence[Document], grouped: dict[str, object]) -> None:
    """Raise ``ValueError`` if features/predictions name a document that is not in ``documents``."""
    known = {doc.id for doc in documents}
    unknown = sorted(set(grouped) - known)
    if unknown:
        raise ValueError(f"task {task_id!r}: predictions for documents not given to decode: {', '.join(unknown[:5])}")


TaskFactory = Callable[..., Task]
"""A registered task: a callable taking the task's options as keyword arguments."""

TASKS: Registry[TaskFactory] = Registry("task")
"""Task factories by id; :func:`mtpeft.tasks.registry.get_task` builds one with options."""
