"""Markdown tables from the JSON that ``step.py --json`` writes (so RESULTS.md copies no number by hand).

    python benchmarks/render.py AFTER.json [--before BEFORE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def _median(values: list | None) -> float | None:
    return statistics.median(values) if values else None


def _variant_rows(result: dict, before: dict | None) -> list[str]:
    variants = result["variants"]
    floor = variants.get("floor", {}).get("spread_s", {}).get("median")
    peer = variants.get("peer", {}).get("spread_s", {}).get("median")
    head = ("| variant | tokens/s | step s (median) | q1-q3 | min-max | CPU s | kernel s | page faults | x floor "
            "| x peer | peak MB |")
    shares = any(v.get("real_token_share") is not None for v in variants.values())
    if shares:
        head += " real-token share |"
    if before:
        head += " before: step s | before: peak MB |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, v in variants.items():
        s = v["spread_s"]
        cpu, system, faults = (_median(v.get(key)) for key in ("cpu_seconds", "system_seconds", "minor_faults"))
        peak = f"{v['peak_bytes'] / 2**20:.0f}" if v.get("peak_bytes") else "-"
        cells = [
            name,
            f"{v['tokens_per_s']:.0f}",
            f"{s['median']:.2f}",
            f"{s['q1']:.2f}-{s['q3']:.2f}",
            f"{s['min']:.2f}-{s['max']:.2f}",
            "-" if cpu is None else f"{cpu:.2f}",
            "-" if system is None else f"{system:.2f}",
            "-" if faults is None else f"{faults:,.0f}",
            f"{s['median'] / floor:.2f}" if floor else "-",
            f"{s['median'] / peer:.2f}" if peer else "-",
            peak,
        ]
        if shares:
            share = v.get("real_token_share")
            cells.append("-" if share is None else f"{share:.3f}")
        if before:
            old = before["variants"].get(name)
            cells.append(f"{old['spread_s']['median']:.2f}" if old else "-")
            cells.append(f"{old['peak_bytes'] / 2**20:.0f}" if old and old.get("peak_bytes") else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _target_rows(result: dict, before: dict | None) -> list[str]:
    head = "| target | value | limit | holds | paired per-round range | CPU-time ratio |"
    if before:
        head += " before: value | before: holds |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    old = {t["name"]: t for t in before["targets"]} if before else {}
    for t in result["targets"]:
        paired = f"{min(t['paired']):.3f}-{max(t['paired']):.3f}" if t.get("paired") else "-"
        cells = [
            t["name"],
            "-" if t["value"] is None else f"{t['value']:.3f}",
            f"{t['op']} {t['limit']}",
            {None: "n/a", True: "yes", False: "**no**"}[t["holds"]],
            paired,
            "-" if t.get("cpu") is None else f"{t['cpu']:.3f}",
        ]
        if before:
            b = old.get(t["name"])
            cells.append("-" if not b or b["value"] is None else f"{b['value']:.3f}")
            cells.append("-" if not b else {None: "n/a", True: "yes", False: "**no**"}[b["holds"]])
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def render(result: dict, before: dict | None = None) -> str:
    """The run's header line, its variant table and its target table, as markdown."""
    machine = result["machine"]
    lines = [
        f"`{result['command']}` — {result['date']}, {result['device']} ({machine['processor']}, "
        f"{machine['cpus']} cores, torch {machine['torch']}, {machine['torch_threads']} thread(s)), "
        f"load average {machine['loadavg_before'][0]:.2f} before / {machine['loadavg_after'][0]:.2f} after, "
        f"{result['elapsed_s'] / 60:.1f} min",
        "",
        *_variant_rows(result, before),
        "",
        *_target_rows(result, before),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--before", type=Path, default=None, help="a run of the same script on earlier code")
    args = parser.parse_args()
    before = json.loads(args.before.read_text()) if args.before else None
    print(render(json.loads(args.result.read_text()), before), end="")


if __name__ == "__main__":
    main()
