"""The shipped synthetic samples: reproducible, small, readable, varied and learnable."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mtpeft.tasks.formats import semeval2014t7, semeval2015t14, semeval2016t12, semeval2017t3, semeval2021t6
from mtpeft.testing import require_shared_data

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
READERS = {
    "semeval2014t7": semeval2014t7.read, "semeval2015t14": semeval2015t14.read, "semeval2016t12": semeval2016t12.read,
    "semeval2017t3": semeval2017t3.read, "semeval2021t6": semeval2021t6.read,
}  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generator_reproduces_the_shipped_samples(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_samples.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    assert _files(tmp_path) == _files(SAMPLES)


def test_samples_are_small() -> None:
    assert sum(len(content) for content in _files(SAMPLES).values()) < 1_000_000


@pytest.mark.parametrize("task", sorted(READERS))
@pytest.mark.parametrize("split", ["train", "dev"])
def test_every_split_reads_strictly(task: str, split: str) -> None:
    result = READERS[task](SAMPLES / task / split)
    assert len(result.documents) >= 12 and not result.skipped
    assert all(len(doc.text or "") < 600 for doc in result.documents)  # short: a CPU model trains in minutes


def test_clinical_samples_have_the_hard_cases() -> None:
    mentions = [m for d in semeval2014t7.read(SAMPLES / "semeval2014t7" / "train").documents for m in d.mentions]
    assert sum(m.is_discontiguous for m in mentions) >= 10
    assert Counter(m.attributes["CUI"] == "CUI-less" for m in mentions)[True] >= 5
    assert len({m.attributes["CUI"] for m in mentions}) >= 15


def test_attribute_values_follow_their_cue_words() -> None:
    """Each cue text always means the same value: the attribute is learnable from the text."""
    meaning: dict[tuple[str, str], set[str]] = defaultdict(set)
    for doc in semeval2015t14.read(SAMPLES / "semeval2015t14" / "train").documents:
        for mention in doc.mentions:
            for field in semeval2015t14.SPAN_FIELDS:
                cue = mention.attributes[field]
                if cue != "null" and field != "Bodyloc_span":
                    start, end = map(int, cue.split("-"))
                    meaning[field, doc.text[start:end].lower()].add(mention.attributes[field[:-5] + "_value"])
    assert {field for field, _ in meaning} >= {"Neg_span", "Uncertain_span", "Course_span", "Severity_span",
                                               "Subj_span"}  # fmt: skip
    assert all(len(values) == 1 for values in meaning.values()), meaning


def test_temporal_samples_have_all_entity_types_and_contains() -> None:
    documents = semeval2016t12.read(SAMPLES / "semeval2016t12" / "train").documents
    assert {m.label for d in documents for m in d.mentions} == set(semeval2016t12.ENTITY_TYPES)
    labels = Counter(r.label for d in documents for r in d.relations)
    assert labels["CONTAINS"] >= 100 and len(labels) >= 2


def test_meme_samples_overlap_and_include_unlabelled_memes() -> None:
    documents = semeval2021t6.read(SAMPLES / "semeval2021t6" / "train").documents
    overlapping = sum(
        any(a.start < b.end and b.start < a.end for i, a in enumerate(d.mentions) for b in d.mentions[i + 1 :])
        for d in documents
    )
    assert overlapping >= 3 and sum(not d.mentions for d in documents) >= 3
    assert len({m.label for d in documents for m in d.mentions}) >= 15
    assert not semeval2021t6.fragment_mismatches(documents)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_comment_relevance_is_learnable_from_text() -> None:
    """A bag-of-words naive Bayes fitted on train beats the majority class on dev by a wide margin."""
    train = semeval2017t3.read(SAMPLES / "semeval2017t3" / "train").documents
    dev = semeval2017t3.read(SAMPLES / "semeval2017t3" / "dev").documents
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    priors: Counter[str] = Counter()
    for doc in train:
        for comment in doc.candidates:
            priors[comment.label] += 1
            counts[comment.label].update(_words(comment.text))
    vocabulary = {word for counter in counts.values() for word in counter}

    def predict(text: str) -> str:
        def log_prob(label: str) -> float:
            total = sum(counts[label].values()) + len(vocabulary)
            return math.log(priors[label]) + sum(math.log((counts[label][w] + 1) / total) for w in _words(text))

        return max(priors, key=log_prob)

    gold = [c.label for d in dev for c in d.candidates]
    accuracy = sum(predict(c.text) == c.label for d in dev for c in d.candidates) / len(gold)
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    assert len(set(gold)) == 3 and accuracy >= majority + 0.3


def test_no_sample_text_comes_from_the_real_files() -> None:
    real = require_shared_data("semeval2021t6/training_set_task2.txt").read_text(encoding="utf-8").lower()
    real += require_shared_data("semeval2017t3").joinpath(
        "SemEval2016-Task3-CQA-QL-train-part2-subtaskA.xml"
    ).read_text(encoding="utf-8").lower()  # fmt: skip
    sentences = set()
    for task in ("semeval2017t3", "semeval2021t6"):
        for doc in READERS[task](SAMPLES / task / "train").documents:
            pieces = [doc.text or ""] + [c.text for c in doc.candidates]
            sentences.update(s.strip() for p in pieces for s in re.split(r"[.\n?!]", p.lower()))
    copied = sorted(s for s in sentences if len(s) >= 30 and s in real)
    assert not copied, copied
