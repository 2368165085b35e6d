"""A stand-in for ``mtpeft train`` (milliseconds instead of a model), to test the sweep's orchestration.

:data:`FAKE_TRAIN` replaces ``mtpeft.sweep.execute._ENTRY``: it reads the run config named on its
command line, appends its arguments to ``<run>/calls.jsonl`` and writes a finished run folder whose
numbers are derived from the config (:func:`fake_metric`), so tests can compute the expected table.
A run with ``seed: 7`` exits with code 3 instead (a crash); one with ``seed: 5`` sleeps two minutes first.
"""

from __future__ import annotations

from pathlib import Path

from mtpeft.samples import sample_path

TASKS = ("semeval2014t7", "semeval2017t3")
TOKENS_PER_S = 100.0


def fake_metric(strategy: str, seed: int) -> float:
    """The headline metric the fake trainer reports for every task."""
    return 0.1 * (seed + 1) + (0.5 if strategy == "s3a" else 0.0)


FAKE_TRAIN = f"""
import json, os, pathlib, sys, yaml
args = sys.argv[1:]
assert args[0] == "train", args
config = yaml.safe_load(open(args[1]))
out = pathlib.Path(config["output_dir"])
out.mkdir(parents=True, exist_ok=True)
with open(out / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": args, "omp": os.environ.get("OMP_NUM_THREADS")}}) + "\\n")
print("fake training of", out.name)
if config["seed"] == 7:
    sys.exit(3)
if config["seed"] == 5:  # a long run, for interrupting
    import time
    time.sleep(120)
(out / "config.yaml").write_text(open(args[1]).read())
value = 0.1 * (config["seed"] + 1) + (0.5 if config["strategy"]["name"] == "s3a" else 0.0)
metrics = {{"semeval2014t7": {{"strict_f1": value}}, "semeval2017t3": {{"map": value}}}}
(out / "final_metrics.json").write_text(json.dumps({{"split": "dev", "step": 2, "tasks": metrics}}))
(out / "params.json").write_text(json.dumps({{"trainable": 1000 if config["strategy"]["name"] == "s2" else 2000}}))
(out / "train_log.jsonl").write_text(json.dumps({{"step": 1, "loss": 1.0, "tokens_per_s": {TOKENS_PER_S}}}) + "\\n")
"""


def sweep_config(output_dir: Path, strategies=("s2", "s3a"), seeds=2, tasks=TASKS, **training) -> dict:
    """A sweep config over the sample data on the tiny backbone."""
    return {
        "output_dir": str(output_dir),
        "model": {"backbone": "tiny"},
        "tasks": [{"id": t, "train": str(sample_path(t, "train")), "dev": str(sample_path(t, "dev")),
                   "options": {"max_length": 48}, "limit": 4} for t in tasks],
        "training": {"max_steps": 2, "batch_size": 2, "tensorboard": False, **training},
        "sweep": {"seeds": seeds, "strategies": list(strategies)},
    }
