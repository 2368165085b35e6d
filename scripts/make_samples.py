"""Write the synthetic samples shipped in ``data/samples`` (deterministic: fixed seeds).

    python scripts/make_samples.py [--out data/samples]

Layout, in each task's official format (written by the writers of ``mtpeft.tasks.formats``)::

    semeval2014t7/{train,dev}/NAME.txt + NAME.pipe
    semeval2015t14/{train,dev}/NAME.txt + NAME.pipe
    semeval2016t12/{train,dev}/DOC/DOC + DOC.Temporal-Relation.gold.completed.xml
    semeval2017t3/{train,dev}/semeval2017t3-{split}-subtaskA.xml
    semeval2021t6/{train,dev}/{split}_set_task2.txt

All texts come from the templates in ``scripts/sample_templates`` (written for this project).
The folders ``OUT/<task>/<split>`` are replaced, nothing else under ``OUT`` is touched.
A test regenerates the samples and compares them byte for byte with the shipped ones.

No dev item is identical to a training item (:func:`distinct_from_train`; a test checks the shipped
files): an item is what the model classifies, a note (2014 T7, 2015 T14, 2016 T12), a question and
comment pair (2017 T3), a meme (2021 T6). A dev document holding such an item is drawn again.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sample_templates package next to this script

from sample_templates import clinical, forum, memes, temporal  # noqa: E402

from mtpeft.tasks.document import Document  # noqa: E402
from mtpeft.tasks.formats import (  # noqa: E402
    semeval2014t7,
    semeval2015t14,
    semeval2016t12,
    semeval2017t3,
    semeval2021t6,
)

SEED = 20240611
SIZES = {"train": 40, "dev": 12}
MEME_SIZES = {"train": 60, "dev": 15}  # memes are one to three lines: more of them

# task -> (generator, sizes, write(documents, split_folder, split))
Writer = Callable[[list[Document], Path, str], None]
TASKS: dict[str, tuple[Callable[[random.Random, int, str], list[Document]], dict[str, int], Writer]] = {
    "semeval2014t7": (clinical.make_documents, SIZES, lambda docs, out, split: semeval2014t7.write(docs, out)),
    "semeval2015t14": (clinical.make_documents, SIZES, lambda docs, out, split: semeval2015t14.write(docs, out)),
    "semeval2016t12": (temporal.make_documents, SIZES, lambda docs, out, split: semeval2016t12.write(docs, out)),
    "semeval2017t3": (
        forum.make_documents, SIZES,
        lambda docs, out, split: semeval2017t3.write(docs, out / f"semeval2017t3-{split}-subtaskA.xml"),
    ),
    "semeval2021t6": (
        memes.make_documents, MEME_SIZES,
        lambda docs, out, split: semeval2021t6.write(docs, out / f"{split}_set_task2.txt"),
    ),
}  # fmt: skip


def document_items(task: str, doc: Document) -> set[str]:
    """The texts the model classifies in ``doc``: its text, or (2017 T3) each question-comment pair."""
    if task == "semeval2017t3":
        return {f"{doc.text}\n\n{c.text}" for c in doc.candidates}
    return {doc.text or ""}


REDRAW: dict[str, Callable[[str, random.Random], Document]] = {
    "semeval2017t3": forum.make_thread,
    "semeval2021t6": memes.make_meme,
}
"""Task -> how to draw one document again with the same id (tasks whose small template pools
can repeat an item; the notes of the other tasks are long enough never to)."""

MAX_REDRAWS = 1000


def distinct_from_train(task: str, train: list[Document], dev: list[Document], rng: random.Random) -> list[Document]:
    """``dev`` with every document that repeats a training item drawn again (same id, from ``rng``)."""
    seen = {item for doc in train for item in document_items(task, doc)}
    result = []
    for doc in dev:
        for _ in range(MAX_REDRAWS):
            if not document_items(task, doc) & seen:
                break
            if task not in REDRAW:
                raise SystemExit(f"{task}: dev document {doc.id} repeats a training item; vary the generator")
            doc = REDRAW[task](doc.id, rng)
        else:
            raise SystemExit(f"{task}: no dev document without a training item after {MAX_REDRAWS} draws")
        result.append(doc)
    return result


def make_samples(out: Path, seed: int = SEED, tasks: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Write the train and dev samples of ``tasks`` (default: all) under ``out``; return document counts."""
    counts: dict[str, dict[str, int]] = {}
    for task_index, (task, (generate, sizes, write)) in enumerate(TASKS.items()):
        if tasks is not None and task not in tasks:
            continue
        counts[task] = {}
        train: list[Document] = []
        for split_index, (split, size) in enumerate(sizes.items()):
            rng = random.Random(seed + 100 * task_index + split_index)  # independent stream per task/split
            documents = generate(rng, size, split)
            if split == "train":
                train = documents
            else:
                documents = distinct_from_train(task, train, documents, rng)
            folder = out / task / split
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            write(documents, folder, split)
            counts[task][split] = len(documents)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "samples")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="only these tasks (default: all)")
    args = parser.parse_args()
    for task, splits in make_samples(args.out, args.seed, args.tasks).items():
        print(task, " ".join(f"{split}={count}" for split, count in splits.items()))


if __name__ == "__main__":
    main()
