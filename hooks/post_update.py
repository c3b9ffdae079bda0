"""Runs once after every `copier update`, once the template's changes are merged.

The template may have changed pyproject.toml, so uv.lock is brought up to date:
`uv lock` keeps every version already locked that still fits and only resolves
what changed. It runs as a version-less entry of `_migrations`, because Copier
runs `_tasks` three times during an update, twice in throwaway directories.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import main_wrapper, run_step


def steps() -> None:
    if not Path("pyproject.toml").exists():
        return
    if "<<<<<<<" in Path("pyproject.toml").read_text():
        print(
            "copier-drf: pyproject.toml has conflict markers; resolve them, then run `uv lock`.",
            file=sys.stderr,
        )
        return
    run_step(
        "Refreshing uv.lock",
        ["uv", "lock"],
        hint="Fix pyproject.toml if needed, then run `uv lock` in the project.",
    )


if __name__ == "__main__":
    main_wrapper(steps)
