"""``python -m ocec_engine`` — see ocec_engine/cli.py."""

from __future__ import annotations

import sys

from ocec_engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
