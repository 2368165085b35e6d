"""Training-step and prediction throughput of mtpeft against the frozen backbone and plain PEFT.

    python benchmarks/step.py --model embedded [--json OUT] [--repeats N]

Measures in one process, interleaved (see ``measure.py``): the floor (frozen backbone forward +
backward to its inputs), a hand-written PEFT LoRA loop of the same active rank as S3a, S2, S3a
(``layer`` and ``output`` placement), S3b, S5 (4-bit), a mixed six-task batch against a loop over
per-task sub-batches, PCGrad against the plain summed loss, prediction against the bare
backbone forward, and training steps on the public data padded against packed (``workload.py``;
skipped without ``../shared/data``). Prints absolute figures, ratios and the issue's targets;
writes JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

# OpenMP threads that spin at barriers while another process holds a core make CPU steps several
# times slower and noisier on a shared machine; waiting passively costs nothing when cores are free.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure  # noqa: E402
import variants as v  # noqa: E402
import workload as w  # noqa: E402
from targets import evaluate_targets  # noqa: E402

from mtpeft.adapters.routing import KERNELS  # noqa: E402
from mtpeft.config import AdaptersConfig, StrategyConfig  # noqa: E402
from mtpeft.heads.token import TokenHead  # noqa: E402
from mtpeft.model.packing import DEFAULT_BUDGET, Packing  # noqa: E402

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
VARIANTS = ("floor", "peer", "peer_pair", "s2", "s3a_layer", "s3a_output", "s3b", "s5", "mixed", "loop", "pcgrad",
            "predict", "bare", "peer_fwd", "workload_padded", "workload_packed", "workload_task_rows")
"""Every variant, in the order measured (``--only`` and ``--profile`` take these names)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", choices=v.model_choices())
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--eval-batches", type=int, default=2,
                        help="batches per prediction call (evaluation predicts a whole task per call)")
    parser.add_argument("--lora-dropout", type=float, default=StrategyConfig().lora_dropout,
                        help="LoRA dropout of every adapter, peer included (default: mtpeft's default)")
    parser.add_argument("--kernel", default=AdaptersConfig().kernel, choices=KERNELS,
                        help="adapters.kernel of mtpeft's variants (the peers are plain PEFT either way)")
    parser.add_argument("--workload-batch", type=int, default=24,
                        help="examples a step of the public-data workload (uniform over its 3 tasks; default 24)")
    parser.add_argument("--workload-steps", type=int, default=2, help="the workload's steps, run in each timed round")
    parser.add_argument("--workload-config", default=None, metavar="CONFIG",
                        help="the steps of this run config (e.g. configs/demo.yaml) instead of the public data")
    parser.add_argument("--packing-tokens", type=int, default=DEFAULT_BUDGET,
                        help=f"tokens per packed row of the workload (training.packing_tokens, default {DEFAULT_BUDGET})")
    parser.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda")
    parser.add_argument("--dtype", default="auto", choices=["auto", *_DTYPES],
                        help="auto: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: stable on a shared machine; 0 = torch's default)")
    parser.add_argument("--layers", type=int, default=None, help="keep only the first N layers (smoke tests)")
    parser.add_argument("--no-memory", action="store_true", help="do not measure peak memory")
    parser.add_argument("--glibc-malloc-defaults", action="store_true",
                        help="leave glibc's trim and mmap thresholds alone (default: keep freed memory; measure.py)")
    parser.add_argument("--only", nargs="+", default=None, choices=VARIANTS, metavar="VARIANT",
                        help=f"measure only these variants: {', '.join(VARIANTS)}")
    parser.add_argument("--profile", nargs="+", default=[], choices=VARIANTS, metavar="VARIANT",
                        help="after the rounds, print torch.profiler's operator table of one step of each")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.profile) - set(args.only or args.profile))
    if unknown:
        parser.error(f"--profile {unknown}: not among the variants measured (--only)")
    if min(args.repeats, args.batch, args.eval_batches, args.workload_batch, args.workload_steps,
           args.packing_tokens) < 1 or args.seq < 2:
        parser.error("--repeats, --batch, --eval-batches, --workload-batch, --workload-steps and --packing-tokens "
                     "must be >= 1, --seq >= 2")
    return args


def build_variants(args, device: torch.device, dtype: torch.dtype, log) -> tuple[list[measure.Variant], dict]:
    """Every variant, and the static facts measured while building (weight bytes, parameter counts)."""
    cfg = StrategyConfig(lora_dropout=args.lora_dropout)  # shared 16, private 8, gated fusion, 7 projections
    levels = v.task_levels()
    tasks = list(levels)
    single = v.first_level1_task(levels)
    facts: dict = {"tasks": tasks, "single_task": single, "strategy": cfg.model_dump(), "kernel": args.kernel,
                   "trainable_parameters": {}}

    t0 = time.perf_counter()
    base = v.load_base(args.model, device, dtype, args.layers)
    hidden, vocab = int(base.config.hidden_size), int(base.config.vocab_size)
    count = sum(p.numel() for p in base.parameters())
    log(f"backbone {args.model}: {count:,} parameters, {time.perf_counter() - t0:.1f} s")
    one = v.make_inputs([single], args.batch, args.seq, vocab, device)
    mixed = v.make_inputs(tasks, args.batch, args.seq, vocab, device)
    evaluation = v.make_inputs([single], args.batch * args.eval_batches, args.seq, vocab, device, seed=1)
    wanted = lambda name: args.only is None or name in args.only  # noqa: E731
    out: list[measure.Variant] = []

    def add(name: str, description: str, make) -> None:
        assert name in VARIANTS, name
        if wanted(name):
            phases: dict[str, float] = {}
            out.append(measure.Variant(name, make(phases), description, phases))

    def multitask(name: str, strategy: StrategyConfig, source=None):
        model = v.build_multitask(source if source is not None else v.sharing_copy(base), strategy, levels, device,
                                  kernel=args.kernel)
        facts["trainable_parameters"][name] = sum(p.numel() for p in model.trainable_parameters())
        return model

    def single_task(name: str, description: str, strategy: StrategyConfig, source=None) -> None:
        def make(phases):
            model = multitask(name, strategy, source)
            return v.mtpeft_step(model, [model.collate({single: one.features})], v.strategy_for("equal", tasks), phases)

        add(name, description, make)

    head = lambda: TokenHead(hidden, v.HEAD_LABELS).to(device)  # noqa: E731
    add("floor", "frozen backbone fwd+bwd to inputs_embeds, no adapters", lambda _: v.floor_step(base, head(), one))
    facts["peer_rank"] = peer_rank = cfg.shared_rank + cfg.private_rank
    add("peer", f"plain PEFT LoRA loop, one adapter r={peer_rank}",
        lambda _: v.peft_peer_step(v.peft_model(v.sharing_copy(base), {"peer": peer_rank}, cfg), head(), one))
    pair = {"shared": cfg.shared_rank, "private": cfg.private_rank}
    add("peer_pair", f"plain PEFT LoRA loop, adapters r={cfg.shared_rank} + r={cfg.private_rank} summed",
        lambda _: v.peft_peer_step(v.peft_model(v.sharing_copy(base), pair, cfg), head(), one))
    single_task("s2", "S2 shared LoRA, single-task batch", cfg.model_copy(update={"name": "s2"}))
    s3a = multitask("s3a_layer", cfg)  # layer placement; also serves mixed, loop, pcgrad and predict
    add("s3a_layer", "S3a layer placement, single-task batch",
        lambda ph: v.mtpeft_step(s3a, [s3a.collate({single: one.features})], v.strategy_for("equal", tasks), ph))
    single_task("s3a_output", "S3a output placement, single-task batch", cfg.model_copy(update={"placement": "output"}))

    def s3b(phases):
        model = multitask("s3b", cfg.model_copy(update={"name": "s3b"}))
        return v.mtpeft_step(model, [model.collate(v.by_task(mixed.features))], v.strategy_for("equal", tasks), phases)

    add("s3b", "S3b hierarchical, mixed six-task batch (level-1 pass for level-2 rows)", s3b)
    if wanted("s5"):
        base4 = v.load_base_4bit(args.model, base, device, dtype, args.layers)
        facts["s5_frozen_weight_bytes"] = v.frozen_weight_bytes(base4)
        facts["float32_frozen_weight_bytes"] = v.float32_weight_bytes(base)
        facts["float32_embedding_bytes"] = base.get_input_embeddings().weight.numel() * 4
        single_task("s5", "S5 = S3a layer on the 4-bit NF4 backbone, single-task batch",
                    cfg.model_copy(update={"name": "s5"}), base4)
    mixed_batch = s3a.collate(v.by_task(mixed.features))
    add("mixed", "S3a layer, mixed six-task batch, one forward (summed loss)",
        lambda ph: v.mtpeft_step(s3a, [mixed_batch], v.strategy_for("equal", tasks), ph))
    loop_batches = [s3a.collate({t: f}) for t, f in v.by_task(mixed.features).items()]
    add("loop", "S3a layer, same examples as per-task sub-batches, one fwd+bwd each",
        lambda ph: v.mtpeft_step(s3a, loop_batches, v.strategy_for("equal", tasks), ph))
    facts["pcgrad_record"] = record = v.StepRecord({})
    facts["shared_parameters"] = s3a.shared_parameters()
    add("pcgrad", "S3a layer, mixed batch, PCGrad on the shared adapter (one backward per task)",
        lambda ph: v.mtpeft_step(s3a, [mixed_batch], v.strategy_for("pcgrad", tasks), ph, record))
    add("predict", f"mtpeft prediction (S3a layer), {args.eval_batches} batches a call: collate, forward, head, decode",
        lambda _: v.predict_step(s3a, evaluation, args.batch))
    add("bare", "frozen backbone forward, no grad, same tokens and batches",
        lambda _: v.bare_forward_step(base, evaluation, args.batch))
    add("peer_fwd", f"plain PEFT forward, one unmerged adapter r={peer_rank}, no grad, same batches",
        lambda _: v.bare_forward_step(v.peft_model(v.sharing_copy(base), {"peer": peer_rank}, cfg), evaluation,
                                      args.batch))
    if any(wanted(name) for name in ("workload_padded", "workload_packed", "workload_task_rows")):
        add_workload(args, s3a_config=cfg, base=base, device=device, facts=facts, add=add, log=log, multitask=multitask)
    return out, facts


def add_workload(args, *, s3a_config, base, device, facts, add, log, multitask) -> None:
    """The workload's variants (``workload.py``: the public data, or ``--workload-config``), or why they are skipped."""
    from mtpeft.backbone import load_tokenizer

    tokenizer = load_tokenizer("embedded")
    if args.workload_config:
        loaded = w.config_workload(args.workload_config, tokenizer, args.workload_steps)
    else:
        loaded = w.load_workload(tokenizer, args.workload_batch, args.workload_steps)
    if isinstance(loaded, str):
        facts["workload_skipped"] = loaded
        log(loaded)
        return
    model = w.with_task_heads(multitask("workload", s3a_config), loaded.tasks, device)
    layouts = {
        "workload_padded": (None, "S3a layer, the workload's steps, rows padded to the step's longest example"),
        "workload_packed": (Packing("packed", args.packing_tokens),
                            f"S3a layer, the same steps packed (rows mixing tasks, <= {args.packing_tokens} tokens)"),
        "workload_task_rows": (Packing("packed", args.packing_tokens, mix_tasks=False),
                               "S3a layer, the same steps packed one task per row (row routing's alternative)"),
    }
    facts["workload"] = {"config": args.workload_config, "batch": None if args.workload_config else args.workload_batch,
                         "steps": args.workload_steps, "tasks": list(loaded.tasks),
                         "real_tokens": sum(sum(len(f.input_ids) for f in fs) for step in loaded.steps
                                            for fs in step.values())}
    facts["real_token_share"] = {name: w.real_token_share(model, loaded, packing) for name, (packing, _) in layouts.items()}
    for name, (packing, description) in layouts.items():
        add(name, description, lambda ph, packing=packing: w.workload_step(model, loaded, packing, ph))


def print_table(timings: measure.Timings, peaks: dict[str, int], rows: list[measure.Variant]) -> None:
    def ratio(name: str, reference: str) -> str:
        if reference not in timings.seconds:
            return "-"
        return f"{timings.median(name) / timings.median(reference):.2f}"

    print(f"\n{'variant':<11} {'tokens/s':>9} {'step s':>7} {'q1-q3 s':>12} {'min-max s':>12} {'cpu s':>6} "
          f"{'sys s':>5} {'faults':>8} {'x floor':>7} {'x peer':>6} {'peak MB':>8}")
    for variant in rows:
        name = variant.name
        s = measure.spread(timings.seconds[name])
        cpu = measure.spread(timings.cpu_seconds[name])["median"]
        system = measure.spread(timings.system_seconds[name])["median"]
        faults = measure.spread(timings.minor_faults[name])["median"]
        peak = f"{peaks[name] / 2**20:.0f}" if name in peaks else "-"
        print(f"{name:<11} {timings.tokens_per_s(name):>9.0f} {s['median']:>7.2f} {s['q1']:>5.2f}-{s['q3']:<6.2f} "
              f"{s['min']:>5.2f}-{s['max']:<6.2f} {cpu:>6.2f} {system:>5.2f} {faults:>8.0f} "
              f"{ratio(name, 'floor'):>7} {ratio(name, 'peer'):>6} {peak:>8}")


def print_targets(targets: list[dict]) -> None:
    print("\ntargets: ratio of wall-time medians [per-round paired range] (ratio of CPU-time medians)")
    for t in targets:
        status = "n/a" if t["holds"] is None else ("HOLDS" if t["holds"] else "MISSED")
        value = "-" if t["value"] is None else f"{t['value']:.3f}"
        paired = f" [{min(t['paired']):.3f}-{max(t['paired']):.3f}]" if t.get("paired") else ""
        cpu = f" ({t['cpu']:.3f})" if t.get("cpu") is not None else ""
        print(f"  {status:<6} {t['name']:<58} {value:>6} {t['op']} {t['limit']}{paired}{cpu}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(load_before: tuple[float, ...], kept_freed_memory: bool) -> dict:
    return {
        "malloc_keeps_freed_memory": kept_freed_memory,
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    default_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype = _DTYPES[args.dtype] if args.dtype != "auto" else default_dtype
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    kept_freed_memory = not args.glibc_malloc_defaults and measure.keep_freed_memory()
    started = time.perf_counter()
    log = lambda message: print(f"[{time.perf_counter() - started:5.0f} s] {message}", flush=True)  # noqa: E731
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/step.py " + " ".join(shlex.quote(a) for a in given)
    load_before = os.getloadavg()

    variants, facts = build_variants(args, device, dtype, log)
    memory = not args.no_memory and (device.type == "cuda" or measure.cpu_peak_supported())
    peaks = measure.warm_up(variants, device, log, memory=memory)
    timings = measure.run_rounds(variants, args.repeats, device, log)

    for name in args.profile:
        print(f"\nprofile of one {name} step (self time per operator):")
        print(measure.profile_table(next(x for x in variants if x.name == name)))
    record, shared = facts.pop("pcgrad_record"), facts.pop("shared_parameters")
    if record.per_task_bytes:
        facts["pcgrad_gradient_memory"] = v.gradient_memory(record, shared)
    targets = evaluate_targets(timings, facts, num_tasks=len(facts["tasks"]), peaks=peaks)
    print_table(timings, peaks, variants)
    if facts.get("real_token_share"):
        print("\nreal-token share (real tokens / positions computed): " + ", ".join(
            f"{name} {share:.3f}" for name, share in facts["real_token_share"].items()))
    print_targets(targets)
    log(f"done; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    if args.json:
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "arguments": {k: str(x) if isinstance(x, Path) else x for k, x in vars(args).items()},
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "machine": machine(load_before, kept_freed_memory),
            "elapsed_s": time.perf_counter() - started,
            "variants": {
                x.name: {
                    "description": x.description,
                    "tokens": timings.tokens[x.name],
                    "seconds": timings.seconds[x.name],
                    "cpu_seconds": timings.cpu_seconds[x.name],
                    "system_seconds": timings.system_seconds[x.name],
                    "minor_faults": timings.minor_faults[x.name],
                    "spread_s": measure.spread(timings.seconds[x.name]),
                    "tokens_per_s": timings.tokens_per_s(x.name),
                    "phases_s": timings.phases[x.name],
                    "peak_bytes": peaks.get(x.name),
                    "real_token_share": facts.get("real_token_share", {}).get(x.name),
                }
                for x in variants
            },
            "facts": facts,
            "targets": targets,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
