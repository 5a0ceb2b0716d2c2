#!/usr/bin/env bash
# The whole test suite: static checks, then pytest against the real Redis, PostgreSQL, SQLite,
# Celery workers and headless Chromium.  Needs scripts/install.sh --dev first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff";        ruff check . && ruff format --check .
echo "== mypy";        mypy
echo "== import contracts"; lint-imports
# Two xdist workers by default (OCEC_TEST_WORKERS; 0 runs in this process): most tests wait on
# real processes, so two overlap well even on two cores. Groups: tests/scheduling.py.
echo "== pytest";      pytest -n "${OCEC_TEST_WORKERS:-2}" --dist loadfile --durations=25 "$@"
