"""Helpers shared by the hook scripts: run a step, and say clearly which one failed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence


class StepFailed(Exception):
    pass


def run_step(title: str, command: Sequence[str], *, hint: str) -> str:
    """Run one step; on failure raise StepFailed naming the step, the command and a fix."""
    print(f"  - {title}: {' '.join(command)}", file=sys.stderr)
    if shutil.which(command[0]) is None:
        raise StepFailed(f"{title} failed: `{command[0]}` is not installed. {hint}")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise StepFailed(
            f"{title} failed (exit {result.returncode}) running `{' '.join(command)}`:\n"
            f"{output}\n{hint}"
        )
    return result.stdout


def git(*args: str) -> subprocess.CompletedProcess[str]:
    """A read-only git query in the current directory; the caller reads its exit code."""
    if shutil.which("git") is None:
        raise StepFailed("`git` is not installed. Install git, then run the step again.")
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def main_wrapper(steps: Callable[[], None]) -> None:
    try:
        steps()
    except StepFailed as exc:
        print(f"\ncopier-drf: {exc}", file=sys.stderr)
        sys.exit(1)
