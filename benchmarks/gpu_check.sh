#!/usr/bin/env bash
# Several jobs per GPU: total training samples/s for N = 1, 4 and 16 runs at once on GPU 0, with and
# without AMP (benchmarks/gpu_throughput.py prints the table). Run it on a GPU host from the
# repository root:
#
#     bash benchmarks/gpu_check.sh
#
# On a host without a GPU it says so and makes a CPU dry run of the same code path with tiny
# settings (N = 1 and 2, a few images), then exits 0. GPU_CHECK_DRY_RUN=1 makes that dry run on
# any host; GPU_CHECK_DRY_JOBS sets its N values (default "1 2").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "${GPU_CHECK_DRY_RUN:-0}" != 1 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU ' \
   && "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    nvidia-smi -L | head -1
    export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
    exec "$PY" benchmarks/gpu_throughput.py --device cuda --jobs 1 4 16 --amp "$@"
fi
echo "gpu_check: no GPU on this host (nvidia-smi lists none, or torch sees no CUDA): GPU figures not measured."
echo "gpu_check: CPU dry run of the same code path with tiny settings:"
# shellcheck disable=SC2086  # the N values are separate words
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$PY" benchmarks/gpu_throughput.py --device cpu \
    --jobs ${GPU_CHECK_DRY_JOBS:-1 2} --amp \
    --n 96 --epochs 2 --batch 32
