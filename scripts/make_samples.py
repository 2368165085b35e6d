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


def make_samples(out: Path, seed: int = SEED) -> dict[str, dict[str, int]]:
    """Write every task's train and dev samples under ``out``; return document counts."""
    counts: dict[str, dict[str, int]] = {}
    for task_index, (task, (generate, sizes, write)) in enumerate(TASKS.items()):
        counts[task] = {}
        for split_index, (split, size) in enumerate(sizes.items()):
            rng = random.Random(seed + 100 * task_index + split_index)  # independent stream per task/split
            documents = generate(rng, size, split)
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
    args = parser.parse_args()
    for task, splits in make_samples(args.out, args.seed).items():
        print(task, " ".join(f"{split}={count}" for split, count in splits.items()))


if __name__ == "__main__":
    main()
