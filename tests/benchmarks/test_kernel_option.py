"""The step benchmark measures either routing kernel (``--kernel``), the fused one by default."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mtpeft.adapters.routing import KERNELS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step.py"


def test_kernel_option_takes_the_routing_kernels_and_refuses_others(monkeypatch, capsys):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    spec = importlib.util.spec_from_file_location("benchmark_step_kernel", SCRIPT)
    step = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(step)
        assert step.parse_args(["--model", "tiny"]).kernel == "fused"
        for kernel in KERNELS:
            assert step.parse_args(["--model", "tiny", "--kernel", kernel]).kernel == kernel
        with pytest.raises(SystemExit):
            step.parse_args(["--model", "tiny", "--kernel", "triton"])
        assert "invalid choice: 'triton'" in capsys.readouterr().err
    finally:
        for name in set(sys.modules) - before:
            if name in ("measure", "variants", "targets", "workload"):
                del sys.modules[name]
