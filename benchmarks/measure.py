"""Timing and memory measurement for the step benchmark: interleaved rounds, medians, peak memory.

Timing: every variant is warmed up (that step also measures its peak memory), then the variants
run in rounds, one step each per round, in serpentine order (forward in even rounds, reversed in odd ones) so that a slow drift of the
machine's load hits every variant alike. Ratios are taken within a round (paired) as well as
between medians.

Peak memory of one step, on CPU, without tracemalloc (which does not see torch's allocator):
free memory is first handed back to the OS (``malloc_trim``), the kernel's high-water mark of
the resident set is reset (``/proc/self/clear_refs`` with ``5``, Linux >= 4.0), one step runs, and
the peak is ``VmHWM`` minus the resident set before the step. On CUDA,
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` gives the same delta.
"""

from __future__ import annotations

import ctypes
import gc
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class Variant:
    """One measured operation: ``step()`` runs it once and returns the number of tokens processed.

    ``phases`` may be filled by ``step`` with named sub-timings of its last call (seconds).
    """

    name: str
    step: Callable[[], int]
    description: str
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class Timings:
    """Per-round seconds of every variant (same round index = measured back to back)."""

    seconds: dict[str, list[float]]
    cpu_seconds: dict[str, list[float]]
    tokens: dict[str, int]
    phases: dict[str, dict[str, list[float]]]
    system_seconds: dict[str, list[float]] = field(default_factory=dict)
    """Kernel CPU time of each step (page faults: zero-filling memory the allocator asked for)."""
    minor_faults: dict[str, list[int]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def tokens_per_s(self, name: str) -> float:
        return self.tokens[name] / self.median(name)

    def paired_ratios(self, numerator: str, denominator: str, factor: float = 1.0) -> list[float]:
        """``t_num / (factor * t_den)`` round by round."""
        return [a / (factor * b) for a, b in zip(self.seconds[numerator], self.seconds[denominator], strict=True)]

    def cpu_ratio(self, numerator: str, denominator: str, factor: float = 1.0) -> float:
        """Ratio of median process CPU times: unlike wall time, it does not count time spent waiting
        for a core that another process holds (with one thread, it is the step's own work)."""
        num, den = self.cpu_seconds[numerator], self.cpu_seconds[denominator]
        return statistics.median(num) / (factor * statistics.median(den))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_rounds(
    variants: Sequence[Variant],
    repeats: int,
    device: torch.device,
    progress: Callable[[str], None] = print,
) -> Timings:
    """Time ``repeats`` interleaved rounds of one step per variant (call after :func:`warm_up`)."""
    seconds: dict[str, list[float]] = {v.name: [] for v in variants}
    cpu_seconds: dict[str, list[float]] = {v.name: [] for v in variants}
    phases: dict[str, dict[str, list[float]]] = {v.name: {} for v in variants}
    system_seconds: dict[str, list[float]] = {v.name: [] for v in variants}
    minor_faults: dict[str, list[int]] = {v.name: [] for v in variants}
    tokens: dict[str, int] = {}
    for round_index in range(repeats):
        order = list(variants) if round_index % 2 == 0 else list(reversed(variants))
        started = time.perf_counter()
        for variant in order:
            gc.collect()  # outside the timed region: no collector pause lands in a step
            _synchronize(device)
            u0 = resource.getrusage(resource.RUSAGE_SELF)
            t0, c0 = time.perf_counter(), time.process_time()
            tokens[variant.name] = variant.step()
            _synchronize(device)
            seconds[variant.name].append(time.perf_counter() - t0)
            cpu_seconds[variant.name].append(time.process_time() - c0)
            u1 = resource.getrusage(resource.RUSAGE_SELF)
            system_seconds[variant.name].append(u1.ru_stime - u0.ru_stime)
            minor_faults[variant.name].append(u1.ru_minflt - u0.ru_minflt)
            for phase, value in variant.phases.items():
                phases[variant.name].setdefault(phase, []).append(value)
        progress(f"round {round_index + 1}/{repeats}: {time.perf_counter() - started:.0f} s")
    return Timings(seconds=seconds, cpu_seconds=cpu_seconds, tokens=tokens, phases=phases,
                   system_seconds=system_seconds, minor_faults=minor_faults)


def warm_up(
    variants: Sequence[Variant], device: torch.device, progress: Callable[[str], None] = print, memory: bool = True
) -> dict[str, int]:
    """One untimed step per variant (first calls pay one-time costs: kernels, lazy state, optimizer
    state); with ``memory``, each of these steps also gives the variant's peak memory.

    The first variant runs once more before, so that the process's own one-time allocations do not
    count as its peak. A variant's optimizer state is created after its backward pass, when the
    activations are already freed, so it does not raise the peak of the first step.
    """
    peaks: dict[str, int] = {}
    if memory and variants:
        variants[0].step()
    for variant in variants:
        t0 = time.perf_counter()
        if memory:
            peaks[variant.name] = step_peak_bytes(variant, device)
        else:
            variant.step()
        _synchronize(device)
        progress(f"warm-up {variant.name}: {time.perf_counter() - t0:.1f} s"
                 + (f", peak {peaks[variant.name] / 2**20:.0f} MB" if memory else ""))
    return peaks


# ---------------------------------------------------------------------------------------- memory


def _proc_status_kib(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field_name}")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Make glibc keep freed blocks up to ``limit`` bytes for reuse (True if it accepted).

    By default glibc serves large blocks with ``mmap`` and gives the top of the heap back to the OS
    above a threshold it moves as it goes, so a step may page-fault again (zero-fill, in the
    kernel) memory that the previous step freed, by an amount that depends on what ran before it:
    here up to a second of a 10-second step. Keeping freed memory measures every variant in steady
    state, as jemalloc or tcmalloc would (PyTorch's CPU tuning guide recommends either). Peak
    memory stays exact: :func:`step_peak_bytes` trims the heap before each measured step. What
    page faulting remains is in the table's ``sys s`` and ``faults`` columns (kernel CPU time
    and minor page faults of each step, from ``getrusage``).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, limit)) and bool(libc.mallopt(_M_MMAP_THRESHOLD, limit))
    except (OSError, AttributeError):
        return False


def _release_free_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the delta may then under-count reused memory
        pass


def cpu_peak_supported() -> bool:
    """Whether the kernel lets this process reset its resident-set high-water mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _proc_status_kib("VmHWM")
        return True
    except OSError:
        return False


def step_peak_bytes(variant: Variant, device: torch.device) -> int:
    """Peak memory one ``variant.step()`` adds above what was resident (CPU) or allocated (CUDA) before."""
    _release_free_memory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        variant.step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current resident set
    before = _proc_status_kib("VmRSS")
    variant.step()
    return (_proc_status_kib("VmHWM") - before) * 1024


def profile_table(variant: Variant, rows: int = 20) -> str:
    """torch.profiler's table of one step of ``variant``, operators sorted by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        variant.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


# ----------------------------------------------------------------------------------- statistics


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (inclusive method; with 3 values: midpoints to the extremes), min and max."""
    values = sorted(values)
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "q1": q1, "q3": q3, "min": values[0], "max": values[-1]}
