"""Runs after `copier copy` (and `copier recopy`) in the project's root, never on update.

1. `uv lock`: resolve the dependencies into uv.lock, so `uv sync --locked` works.
   Without uv (or when locking fails) the project is kept and the message says
   what to run: Copier deletes a new project whose task fails.
2. Git, so that `copier update` has history to work with:
   - outside any repository: `git init` and a first commit;
   - the root of a repository without commits yet: the first commit;
   - a repository that already has commits (recopy, or a copy over an existing
     project): nothing is committed; the changes are left for review;
   - inside another repository (a monorepo): that repository is left alone,
     unless it ignores this directory, in which case the project gets its own.

Never `git add` in a repository other than the project's own: `git add --all`
stages the whole work tree, not only the current directory.

Each step is idempotent: running the script again in a rendered project is harmless.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import StepFailed, git, main_wrapper, run_step

FIRST_COMMIT_MESSAGE = "Render the service from copier-drf"


def repository_root() -> Path | None:
    """The top level of the work tree that contains the current directory, if any."""
    result = git("rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def has_commits() -> bool:
    return git("rev-parse", "--verify", "--quiet", "HEAD").returncode == 0


def ignored_by_enclosing_repository() -> bool:
    return git("check-ignore", "--quiet", ".").returncode == 0


def init_repository() -> None:
    run_step(
        "Creating the git repository",
        ["git", "init", "--quiet", "--initial-branch=main"],
        hint="Install git, then run `git init` in the project.",
    )


def first_commit() -> None:
    run_step("Staging files", ["git", "add", "--all"], hint="Run `git add --all` by hand.")
    if git("diff", "--cached", "--quiet").returncode == 0:
        return
    run_step(
        "Making the first commit",
        [
            "git",
            "-c",
            "user.name=copier-drf",
            "-c",
            "user.email=copier-drf@localhost",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            FIRST_COMMIT_MESSAGE,
        ],
        hint=f"Commit by hand: `git commit -m '{FIRST_COMMIT_MESSAGE}'`.",
    )


def set_up_git() -> None:
    here = Path.cwd().resolve()
    root = repository_root()
    if root is not None and root != here and not ignored_by_enclosing_repository():
        print(
            f"copier-drf: the project is inside the git repository at {root}; "
            "review the new files and commit them there.",
            file=sys.stderr,
        )
        return
    if root != here:
        init_repository()
    elif has_commits():
        print(
            "copier-drf: the repository already has commits, so nothing was committed; "
            "review the changes with `git diff` and commit them.",
            file=sys.stderr,
        )
        return
    first_commit()


def lock() -> None:
    """`uv lock`, or a warning: a copy whose task fails is deleted by Copier, so never fail."""
    try:
        run_step(
            "Locking dependencies",
            ["uv", "lock"],
            hint="Install uv (`pip install uv`), then run `uv lock` in the project "
            "and commit uv.lock.",
        )
    except StepFailed as exc:
        print(
            f"\ncopier-drf: {exc}\nThe rendered files are kept; `make install` needs uv.lock.\n",
            file=sys.stderr,
        )


def steps() -> None:
    print("copier-drf: setting up the new project", file=sys.stderr)
    lock()
    set_up_git()


if __name__ == "__main__":
    main_wrapper(steps)
