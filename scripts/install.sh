#!/usr/bin/env bash
# Install ocec-jobs into ./.venv (idempotent).  --dev adds test tools and headless Chromium.
# torch is pinned to the 2.13.0 CPU build first so no later requirement pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1

py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "is ignored" || true; }

.venv/bin/python -c "import torch" 2>/dev/null || pip install "torch==2.13.0"
if [ $dev = 1 ]; then pip install -e ".[dev]"; else pip install -e ".[all]"; fi
.venv/bin/python -c "import torch, fastapi, celery, ocec_engine, jobstore" \
  || { echo "install: packages failed to import" >&2; exit 1; }

if [ $dev = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null; then
    echo "install: installing Debian chromium for the browser tests"
    apt-get install -y -q chromium chromium-driver >/dev/null
  else
    echo "install: /usr/bin/chromium missing; browser tests will fail" >&2
  fi
fi
echo "install: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
