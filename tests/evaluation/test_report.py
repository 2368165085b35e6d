"""``mtpeft report``: one self-contained HTML page and its Markdown twin from synthetic run folders,
checked as files and as rendered by headless Chromium (skipped where Chromium is not installed)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtpeft.cli.main import app
from mtpeft.evaluation.report.build import build_report
from mtpeft.evaluation.results import BootstrapOptions
from tests.evaluation.synthetic_runs import f1_stats_metrics, make_run

TASKS = ("a", "b", "c")
DOCS = {"a": [(3, 1, 2), (1, 1, 0), (0, 2, 1)], "b": [(2, 0, 1), (0, 1, 1)], "c": [(1, 1, 1), (5, 0, 0)]}


def _stats(task: str, docs: list[tuple[int, int, int]]) -> list[dict]:
    return [{"doc_id": f"{task}{k}", "stats": {"tp": tp, "fp": fp, "fn": fn}} for k, (tp, fp, fn) in enumerate(docs)]


def _sweep(root: Path) -> Path:
    """Single-task, pairwise and all-task runs on three tasks, two seeds each, plus an unfinished one."""
    for seed in (0, 1):
        for task in TASKS:  # one more false positive per document than the all-task runs
            worse = [(tp, fp + 1 + seed, fn) for tp, fp, fn in DOCS[task]]
            make_run(root, f"s1-{task}-{seed}", tasks=[task], strategy="s1", seed=seed,
                     metrics={task: f1_stats_metrics("", worse)}, params={"trainable": 100},
                     per_document={task: _stats(task, worse)})
        for i, first in enumerate(TASKS):
            for second in TASKS[i + 1:]:
                make_run(root, f"pair-{first}{second}-{seed}", tasks=[first, second], seed=seed,
                         metrics={t: {"f1": 0.45 + 0.05 * i + 0.01 * seed} for t in (first, second)})
        docs = {t: _stats(t, d) for t, d in DOCS.items()}
        make_run(root, f"all-{seed}", tasks=TASKS, seed=seed, metrics={t: f1_stats_metrics("", d) for t, d in DOCS.items()},
                 per_document=docs, params={"trainable": 300}, before_training={t: {"f1": 0.0} for t in TASKS},
                 probing={"shared": {"a": 0.6 + 0.1 * seed, "b": 0.5}, "fused": {"a": 0.7, "b": 0.55}})
    make_run(root, "unfinished", tasks=["a"], metrics={}, finished=False)
    return root


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report")
    build_report([_sweep(base / "runs")], base / "out" / "report.html", bootstrap=BootstrapOptions(n_resamples=200))
    return base / "out"


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


def test_html_is_self_contained(rendered):
    page = (rendered / "report.html").read_text()
    sources = _images(page)
    # per configuration: loss curves (7), conflicts (the 4 multi-task ones), reliability diagrams (3 singles x 1
    # task + 3 pairs x 2 + 1 x 3 = 12); transfer heatmaps: pairwise and leave-one-out
    assert len(sources) == 7 + 4 + 12 + 2
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<script|<link|@import|url\(|src=\"(?!data:)|href=\"(?!#)", page)


def test_sections_and_tables(rendered):
    page = (rendered / "report.html").read_text()
    for title in ("Runs", "Results", "Per-task metrics", "Loss curves", "Gradient conflicts", "Calibration",
                  "Transfer", "Probing"):
        assert f">{title}</h2>" in page
    assert "1 folder(s) skipped" in page and "unfinished" in page
    assert "Paired bootstrap tests" in page and "95% percentile interval" in page
    assert "s3a [tasks: a+b+c] (before training)" in page
    # runs, skipped, results, paired tests, per-task (3 tasks), ECE, transfer (pairwise, leave-one-out), probing
    assert page.count("<table>") == 1 + 1 + 1 + 1 + 3 + 1 + 2 + 1
    assert "shared" in page and "fused" in page  # probing rows


def test_markdown_twin_links_existing_images(rendered):
    text = (rendered / "report.md").read_text()
    links = re.findall(r"!\[(?:\\.|[^\]\\])*\]\(([^)]+)\)", text)  # alt text has escaped brackets
    assert len(links) == len(_images((rendered / "report.html").read_text()))
    assert all((rendered / link).is_file() for link in links)
    assert "| task | configuration | seeds | metric |" in text
    for kind in ("csv", "md", "json"):
        assert (rendered / "report_files" / f"results.{kind}").is_file()


def test_absent_inputs_are_one_line_each(tmp_path):
    make_run(tmp_path / "runs", "bare", tasks=["a"], metrics={"a": {"f1": 0.5}}, log=False, calibration=False)
    files = build_report([tmp_path / "runs"], tmp_path / "r.html", bootstrap=None)
    page = files.html.read_text()
    for line in ("No loss curves", "No gradient-conflict measurements", "No calibration data", "No transfer matrix",
                 "No probing results", "No confidence intervals", "No folder was skipped"):
        assert line in page and line in files.markdown.read_text()
    assert "<img" not in page


def test_cli(tmp_path):
    make_run(tmp_path / "runs", "r", tasks=["a"], metrics={"a": {"f1": 0.5}}, calibration=False)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "o" / "rep.html"),
                                      "--resamples", "50"])
    assert result.exit_code == 0, result.output
    assert "1 run(s), 0 skipped" in result.output and (tmp_path / "o" / "rep.md").is_file()
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "mtpeft: error:" in result.output and "not a folder" in result.output


_PROBE = """<script>window.addEventListener("load", () => {
  const out = document.createElement("pre"); out.id = "render-check";
  out.textContent = JSON.stringify({
    widths: [...document.images].map(i => i.naturalWidth),
    tables: [...document.querySelectorAll("table")].map(t => t.rows.length)});
  document.body.appendChild(out);
});</script>"""

_BROKEN = '<img id="broken" src="data:image/png;base64,AAAA">'  # must not decode: shows the check can fail


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the headless render check is skipped")
    return path


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_chromium_renders_tables_and_images(rendered, tmp_path):
    binary = _chromium()
    page = (rendered / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", f"{_BROKEN}{_PROBE}</body>"))
    result = _run_chromium(binary, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="render-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no render check in the DOM; chromium said: {result.stderr[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))
    widths = check["widths"]
    assert len(widths) == len(_images(page)) + 1
    assert all(w > 0 for w in widths[:-1]), widths  # every embedded PNG decoded
    assert widths[-1] == 0  # the broken one did not
    assert len(check["tables"]) == page.count("<table>") and all(rows >= 2 for rows in check["tables"])


def test_chromium_screenshot_is_not_blank(rendered, tmp_path):
    import matplotlib.image
    import numpy as np

    binary = _chromium()
    shot = tmp_path / "shot.png"
    result = _run_chromium(binary, tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}",
                           (rendered / "report.html").as_uri())
    assert shot.is_file(), f"no screenshot; chromium said: {result.stderr[-2000:]}"
    pixels = matplotlib.image.imread(shot)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert pixels.shape[:2] == (2400, 1280) and len(colours) > 50


def test_files_as_the_trainer_writes_them(tmp_path):
    """Nested params.json, a skipped non-finite step without a loss, a zero-gradient task (cosine None)."""
    run = make_run(tmp_path / "runs", "r", tasks=["a", "b"], metrics={"a": {"f1": 0.5}, "b": {"f1": 0.4}},
                   conflicts=False, calibration=False)
    (run / "params.json").write_text(json.dumps({"trainable": 4321, "backbone": 10, "adapters": {"shared": 3},
                                                  "fusion": 0, "heads": {"a": 1}, "other": {}, "active_per_task": {"a": 2}}))
    with (run / "train_log.jsonl").open("a") as log:
        log.write(json.dumps({"step": 31, "skipped_nonfinite": 1, "nonfinite_tasks": ["a"]}) + "\n")
    records = [{"step": 10, "tasks": ["a", "b"], "cosine": [[1.0, -0.5], [-0.5, 1.0]], "conflict_fraction": 1.0},
               {"step": 20, "tasks": ["a", "b"], "cosine": [[1.0, None], [None, None]], "conflict_fraction": None},
               {"step": 30, "tasks": [], "cosine": [], "conflict_fraction": None, "norms": {}, "pairs": 0}]
    (run / "conflicts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    files = build_report([tmp_path / "runs"], tmp_path / "r.html", bootstrap=None)
    text = files.markdown.read_text()
    assert "| a | s3a | 1 | f1 | 0.5000 (1 seed) | n/a | 4,321 |" in text
    assert len(list(files.assets.glob("conflicts-*.png"))) == 1 and len(list(files.assets.glob("loss-*.png"))) == 1
