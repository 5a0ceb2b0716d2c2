"""README.md's fenced blocks and their ``<!-- readme-test: NAME -->`` markers, and a bash that runs them.

A block is marked by the HTML comment on the line right above its opening fence. ``Shell`` runs
marked blocks one after another as the user would paste them into one terminal: each block in its own
``bash`` with ``set -euo pipefail``, the variables and functions the earlier blocks defined restored
first (``declare -p`` / ``declare -f`` into a state file).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MARKER = re.compile(r"^<!--\s*readme-test:\s*([\w-]+)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
FUNCTION = re.compile(r"^\s*([a-z_][a-z0-9_]*)\(\)\s*\{", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # of the opening fence, 1-based
    marker: str | None

    def commands(self) -> list[str]:
        """The block's commands: one per line, continuation lines joined, comments dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.code)
        commands = (re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines())
        return [c for c in commands if c and not c.startswith("#")]


def blocks(text: str | None = None) -> list[Block]:
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(opening.group(1), code, i + 1, marker.group(1) if marker else None))
        i = end + 1
    return found


def marked(name: str) -> Block:
    [block] = [b for b in blocks() if b.marker == name]
    return block


class Shell:
    """Runs README blocks in ``cwd`` as one terminal session would, with ``env``."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env
        self.state = cwd / ".readme-shell-state.sh"
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def run(self, code: str, timeout: float) -> subprocess.CompletedProcess[str]:
        self.names |= set(ASSIGNED.findall(code))
        self.functions |= set(FUNCTION.findall(code))
        restore = f"source {self.state}\n" if self.state.exists() else ""
        keep = " ".join(sorted(self.names))
        functions = " ".join(sorted(self.functions))
        save = (
            f"\n{{ declare -p {keep} 2>/dev/null || true; declare -f {functions} 2>/dev/null || true; }}"
            f" > {self.state}\n"
        )
        script = f"set -euo pipefail\n{restore}{code}{save if keep or functions else ''}"
        return subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
