"""The multi-task training loop.

``fit()`` reads in execution order: for each stage of the strategy, for each step, draw a batch,
compute the per-task losses (each loss term normalised by its units over the whole step:
``step_losses``), combine them (or operate on their gradients), step, log, evaluate (every
evaluation, the final one too, competes for ``best``), checkpoint. Everything a strategy needs is declared by the objects it builds (the loss strategy's
``needs_per_task_gradients``, the plan's stages); nothing here branches on a strategy's name.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mtpeft.config import RunConfig
from mtpeft.errors import MtpeftError
from mtpeft.evaluation.run_eval import evaluate_split, write_task_outputs
from mtpeft.evaluation.score import headline_metric, headline_scores
from mtpeft.model.build import BuiltModel
from mtpeft.model.load import load_named
from mtpeft.model.packing import resolve_packing
from mtpeft.progress import TrainingProgress
from mtpeft.training import checkpoint as ckpt
from mtpeft.training.conflicts import ConflictMonitor
from mtpeft.training.data import TaskData
from mtpeft.training.distributed import Processes, average_gradients
from mtpeft.training.rng import get_rng_state, set_rng_state
from mtpeft.training.run_folder import RunFolder
from mtpeft.training.sampling import TaskSampler
from mtpeft.training.nonfinite import NonFiniteGuard
from mtpeft.training.schedule import build_optimization
from mtpeft.training.step_losses import StepLosses
from mtpeft.training.tracking import Tracker
from mtpeft.training.weighting import build_loss_strategy


@dataclass
class TrainState:
    """What a checkpoint must restore, besides tensors, for a resumed run to continue exactly."""

    step: int = 0
    stage: int = 0
    stage_step: int = 0
    best_score: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    samplers: dict = field(default_factory=dict)
    nonfinite: dict = field(default_factory=dict)


def _autocast(config: RunConfig, device: torch.device):
    wanted = config.training.bf16
    supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if wanted == "on" and not supported:
        raise MtpeftError("training.bf16=on, but this device has no bf16 support; use auto or off")
    if wanted == "off" or not supported:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


logger = logging.getLogger(__name__)
"""Progress lines (main process only); ``mtpeft``'s command line prints them to stderr."""


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class Trainer:
    """Trains ``built.model`` on ``data`` as ``config`` says, logging into ``run``."""

    def __init__(
        self,
        config: RunConfig,
        built: BuiltModel,
        data: dict[str, TaskData],
        run: RunFolder,
        processes: Processes | None = None,
    ) -> None:
        self.config = config
        self.processes = processes or Processes()
        if config.training.batch_size % self.processes.world:
            raise MtpeftError(
                f"training.batch_size {config.training.batch_size} must be a multiple of the "
                f"{self.processes.world} processes (each takes an equal share of the global batch)"
            )
        self.built = built
        self.model = built.model
        self.data = data
        self.run = run
        self.device = next(p.device for p in self.model.parameters() if p.requires_grad)
        tc = config.training
        self.loss_strategy = build_loss_strategy(tc.loss.strategy, list(data), tc.loss.options, seed=config.seed)
        self.loss_strategy.to(self.device)
        named = list(self.model.named_parameters())
        self.stage_steps = self._split_steps()
        self.optimizer, self.scheduler = build_optimization(  # each stage its own warm-up and decay
            tc,
            {n: p for n, p in named if _is_trainable_part(n) and not n.startswith("heads.")},
            {n: p for n, p in named if n.startswith("heads.")},
            dict(self.loss_strategy.named_parameters()),
            stages=self.stage_steps,
        )
        self.guard = NonFiniteGuard(tc.max_nonfinite_in_row)
        self.monitor = ConflictMonitor(run.conflicts_path, tc.conflict_every)
        self.state = TrainState()
        self._saved_step: int | None = None
        self.before: dict[str, dict[str, float]] | None = None
        self.samplers = [
            TaskSampler.from_config({t: len(data[t].train) for t in stage.tasks}, tc.batch_size, config.seed + i, tc.sampling)
            for i, stage in enumerate(built.plan.stages)
        ]
        # packed rows where exact (checked once on the backbone), else length-grouped forwards
        self.packing = resolve_packing(self.model.backbone.inner_model, tc.packing, tc.packing_tokens, "training.packing")
        ev = config.evaluation
        self.model.prediction_packing = resolve_packing(self.model.backbone.inner_model, ev.packing, ev.packing_tokens,
                                                        "evaluation.packing")

    def _split_steps(self) -> list[int]:
        fractions = [s.fraction for s in self.built.plan.stages]
        steps = [int(math.floor(f * self.config.training.max_steps)) for f in fractions]
        steps[-1] = self.config.training.max_steps - sum(steps[:-1])
        return steps

    # ------------------------------------------------------------------ the loop
    def fit(self, resume: bool = False) -> dict:
        """Train to ``max_steps`` (or early stop); returns the final dev metrics per task."""
        if resume:
            self._restore(self.run.checkpoints)
        tc = self.config.training
        main = self.processes.is_main
        started = time.perf_counter()
        if self.config.evaluation.before_training and self.state.step == 0 and main:
            logger.info("evaluating the untrained model on dev (%d tasks)", len(self.config.tasks))
            self.before = self.evaluate("dev")
        if main:
            logger.info("training: %s %d steps of %d examples%s", self.config.strategy.name,
                        tc.max_steps, tc.batch_size, f", resuming at step {self.state.step}" if resume else "")
        tensorboard = self.run.tensorboard if tc.tensorboard and main else None
        # a bar on a terminal (the periodic lines below otherwise); log lines print above it
        progress = TrainingProgress(tc.max_steps, self.state.step, enabled=None if main else False)
        with Tracker(tensorboard, mlflow=tc.mlflow, run_name=self.run.path.name) as tracker, progress.shown_above():
            for stage_index in range(self.state.stage, len(self.built.plan.stages)):
                self._enter_stage(stage_index)
                while self.state.stage_step < self.stage_steps[stage_index] and not self.state.stopped_early:
                    record = self._train_step(stage_index)
                    self.state.step += 1
                    self.state.stage_step += 1
                    step = self.state.step
                    progress.step(record)
                    if main and record is not None and (step % tc.log_every == 0 or step == 1):
                        self.run.train_log.append({"step": step, **record})
                        tracker.log(step, record, prefix="train/")
                        if not progress.shown:
                            logger.info("step %d/%d  loss %.4f  lr %.2e  %.0f real tokens/s  elapsed %s", step, tc.max_steps,
                                        record["loss"], record["lr"], record["tokens_per_s"],
                                        _clock(time.perf_counter() - started))
                    if step % tc.eval_every == 0 and step < tc.max_steps:  # the final evaluation follows
                        self._evaluate_and_select(tracker)
                    if main and step % tc.checkpoint_every == 0 and self._saved_step != step:
                        self._save_checkpoint()
                if self.state.stopped_early:
                    break
                self.state.stage += 1
                self.state.stage_step = 0
            progress.close()
            final = self._evaluate_and_select(tracker, final=True)
            if main and self._saved_step != self.state.step:
                self._save_checkpoint()
        if main:
            self.model.backbone.save_adapters(self.run.path / "adapters")
        self.processes.barrier()
        return final

    def _enter_stage(self, stage_index: int) -> None:
        """Make exactly this stage's components trainable (S4 freezes some between stages)."""
        stage = self.built.plan.stages[stage_index]
        for component in self.model.components():
            self.model.set_trainable(component, component not in stage.frozen)

    def _train_step(self, stage_index: int) -> dict | None:
        """One optimizer step over ``grad_accum`` micro-batches; ``None`` if skipped (non-finite loss).

        All micro-batches are drawn and collated first, so that every loss term is divided by its
        unit count over the whole step (all micro-batches and processes; ``step_losses``).
        """
        tc = self.config.training
        model, strategy = self.model, self.loss_strategy
        model.train()
        shared = model.shared_parameters()
        shared_ids = {id(p) for p in shared}
        others = [p for p in model.trainable_parameters() if id(p) not in shared_ids]
        # Conflicts exist only between tasks that share parameters (none in S1).
        measure = bool(shared) and self.monitor.due(self.state.step + 1)
        started = time.perf_counter()
        drawn = [self.samplers[stage_index].next_batch() for _ in range(tc.grad_accum)]  # global batches
        batches = [  # this process's share of each
            model.collate({t: [self.data[t].train[i] for i in ids] for t, ids in self._local(indices).items()}, self.packing)
            for indices in drawn
        ]
        step = StepLosses.plan(model, drawn, batches, tc.loss.normalisation, self.processes)  # unit counts
        tokens = 0
        for index, batch in enumerate(batches):
            tokens += batch.num_tokens
            with _autocast(self.config, self.device):
                losses = step.task_losses(index, model(batch).outputs)  # per-task losses
            if not self._all_finite(losses):  # the guard raises after too many in a row
                return self._skip_nonfinite(losses)
            strategy.backward(losses, shared, others, shares=step.shares, scale=step.scale, keep_per_task=measure)  # combine
        gradients = strategy.finish(shared)
        if not strategy.needs_per_task_gradients:  # gradient strategies average over processes themselves
            average_gradients(model.trainable_parameters() + list(strategy.parameters()), self.processes)
        if tc.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.trainable_parameters() + list(strategy.parameters()), tc.max_grad_norm)
        self.optimizer.step()  # step
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if measure and gradients.per_task_gradients and self.processes.is_main:
            self.monitor.record(self.state.step + 1, gradients.per_task_gradients)
        elapsed = time.perf_counter() - started
        summary = step.summary()
        return {
            "lr": self.scheduler.get_last_lr()[0],
            "loss": sum(summary["shares"][t] * loss for t, loss in summary["losses"].items()),
            **summary,
            "weights": gradients.weights,
            "tokens": tokens,
            "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0,
            "peak_memory_mb": peak_memory_mb(self.device),
            "skipped_nonfinite": self.guard.skipped,
            "stage": self.built.plan.stages[stage_index].name,
        }

    def _local(self, indices: dict[str, list[int]]) -> dict[str, list[int]]:
        """This process's share of a global batch: every ``world``-th example (its loss terms are
        normalised by the units of ALL processes, so the shares need no weights)."""
        if self.processes.world == 1:
            return indices
        flat = [(t, i) for t, ids in indices.items() for i in ids][self.processes.rank :: self.processes.world]
        local: dict[str, list[int]] = {}
        for task, i in flat:
            local.setdefault(task, []).append(i)
        return local

    def _all_finite(self, losses: dict) -> bool:
        """Whether every process's losses are finite: processes skip, or step, together.

        The guard counts a skipped step and raises after ``max_nonfinite_in_row`` in a row.
        """
        bad = {t: float(loss.detach()) for t, loss in losses.items() if not torch.isfinite(loss)}
        if self.processes.world > 1:
            flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and not bad:
                bad = {"another process": float("nan")}
        return self.guard.check(bad, self.state.step + 1)

    def _skip_nonfinite(self, losses: dict) -> None:
        """Drop the step's gradients; the guard has counted it (and raised if too many in a row)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_strategy.discard()
        bad = sorted(t for t, loss in losses.items() if not torch.isfinite(loss))
        if self.processes.is_main:
            self.run.train_log.append({"step": self.state.step + 1, "skipped_nonfinite": self.guard.skipped, "nonfinite_tasks": bad})
        return None

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: str = "dev", final: bool = False) -> dict[str, dict[str, float]]:
        """Official metrics of every task that has a ``split`` path; predictions under the run folder.

        The final evaluation also writes calibration data and per-document statistics (for the report).
        """
        # every task with data for `split` (a task with `split:` takes dev from its train file), then
        # the rows made of several tasks (2021 T6 subtask 2: mtpeft.evaluation.subtask2)
        evaluations = evaluate_split(
            self.model, {t: d.task for t, d in self.data.items()}, self.config, self.built.backbone.tokenizer, split,
            self.run.path / "eval" / f"step-{self.state.step}" / split, run_dir=self.run.path, step=self.state.step,
        )
        results = {}
        for task, evaluation in evaluations.items():
            results[task] = evaluation.metrics
            if final:
                write_task_outputs(self.run.path, split, evaluation, self.config.evaluation.ece_bins)
            self.run.metrics.append({"step": self.state.step, "split": split, "task": task, "metrics": evaluation.metrics})
        return results

    def selection_score(self, results: dict[str, dict[str, float]]) -> float | None:
        """The number early stopping and best-checkpoint selection maximise."""
        metric = self.config.training.early_stopping.metric or "mean"
        if not results:
            return None
        if metric == "mean":  # one headline per task: 2021 T6's is its subtask-2 row, not its two levels
            headlines = headline_scores(results)
            return sum(headlines.values()) / len(headlines)
        task, _, name = metric.partition(":")
        if task not in results or name not in results[task]:
            raise MtpeftError(f"early_stopping.metric {metric!r}: no such dev metric; tasks evaluated: {sorted(results)}")
        return results[task][name]

    def _evaluate_and_select(self, tracker: Tracker, final: bool = False) -> dict:
        """Main process: evaluate, keep the best checkpoint, decide early stopping; then share the outcome."""
        if self.processes.is_main:
            results = self._evaluate_and_select_main(tracker, final)
        else:
            results = None
        shared = self.processes.broadcast((results, self.state.best_score, self.state.best_step,
                                           self.state.evals_without_improvement, self.state.stopped_early))
        results, self.state.best_score, self.state.best_step, self.state.evals_without_improvement, self.state.stopped_early = shared
        return results

    def _evaluate_and_select_main(self, tracker: Tracker, final: bool) -> dict:
        logger.info("evaluating on dev at step %d%s", self.state.step, " (final)" if final else "")
        results = self.evaluate("dev", final=final)
        for task, metrics in results.items():
            tracker.log(self.state.step, {headline_metric(task, metrics): metrics[headline_metric(task, metrics)]}, prefix=f"dev/{task}/")
        score = self.selection_score(results)
        # The final evaluation competes for `best` like every other (an early stop ends on an
        # evaluated step, which this one repeats: an equal score keeps the earlier best).
        if score is not None and (self.state.best_score is None or score > self.state.best_score):
            self.state.best_score, self.state.best_step = score, self.state.step
            self.state.evals_without_improvement = 0
            self._save_checkpoint(best=True)
        elif score is not None and not final:
            self.state.evals_without_improvement += 1
            patience = self.config.training.early_stopping.patience
            if self.config.training.early_stopping.metric and self.state.evals_without_improvement >= patience:
                self.state.stopped_early = True
        if final:
            payload = {"split": "dev", "step": self.state.step, "tasks": results,
                       "best_step": self.state.best_step, "best_score": self.state.best_score,
                       "selection_metric": self.config.training.early_stopping.metric or "mean",
                       "stopped_early": self.state.stopped_early, "skipped_nonfinite": self.guard.skipped}
            before = self.before if self.before is not None else self._saved_before()
            if before is not None:
                payload["before_training"] = before
            (self.run.path / "final_metrics.json").write_text(json.dumps(payload, indent=2, sort_keys=True))
        return results

    def _saved_before(self) -> dict | None:
        """Step-0 metrics of a resumed run, from its metrics log."""
        rows = [r for r in self.run.metrics.read() if r["step"] == 0 and r["split"] == "dev"]
        return {r["task"]: r["metrics"] for r in rows} or None

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, best: bool = False) -> None:
        """Adapters in PEFT format (+ fusion), heads and the rest as safetensors, states as JSON."""
        self._saved_step = self.state.step
        self.state.samplers = {str(i): s.state_dict() for i, s in enumerate(self.samplers)}
        self.state.nonfinite = self.guard.state_dict()
        named = dict(self.model.named_parameters())
        ckpt.save_checkpoint(
            self.run.checkpoints,
            self.state.step,
            tensors={
                "heads": {n: p.detach() for n, p in named.items() if n.startswith("heads.")},
                "extra": {n: p.detach() for n, p in named.items() if n.startswith("cross_level.")},
                "loss_strategy": {n: t.detach() for n, t in self.loss_strategy.state_dict().items()},
            },
            folders={"adapters": self.model.backbone.save_adapters},
            state={"train": dict(self.state.__dict__), "rng": get_rng_state(), "loss_strategy": self.loss_strategy.state()},
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            best=best,
            metric=self.state.best_score if best else None,
            keep_last=self.config.training.keep_last,
        )

    def _restore(self, path: Path) -> None:
        loaded = ckpt.load_checkpoint(path, "last")
        self.model.backbone.load_adapters(loaded.folder("adapters"))
        load_named(self.model, {**loaded.tensors("heads"), **loaded.tensors("extra")})
        self.loss_strategy.load_state_dict(loaded.tensors("loss_strategy"))
        self.loss_strategy.load_state(loaded.state.get("loss_strategy", {}))
        self.optimizer.load_state_dict(loaded.optimizer_state(map_location=self.device))
        self.scheduler.load_state_dict(loaded.scheduler_state())
        self.state = TrainState(**loaded.state["train"])
        self.guard.load_state_dict(self.state.nonfinite)
        for i, sampler in enumerate(self.samplers):
            sampler.load_state_dict(self.state.samplers[str(i)])
        set_rng_state(loaded.state["rng"])
        # Logs written after the checkpoint by the interrupted run are replaced by the resumed run's.
        if self.processes.is_main:
            for log in self.run.logs():
                log.truncate_after(self.state.step)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: the accelerator's allocator peak on CUDA, else the process's max RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _is_trainable_part(name: str) -> bool:
    """Parameters that training changes: adapters, fusion, heads, cross-level attention."""
    return "lora_" in name or name.startswith(("backbone.layer_fusions", "backbone.output_fusion", "heads.", "cross_level."))
