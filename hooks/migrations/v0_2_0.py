"""Migration to v0.2.0: the local SQLite database moves from db.sqlite3 to var/db.sqlite3.

From v0.2.0 the service keeps its local state in var/ (ignored by git), so the
project root holds only what is committed. Without DATABASE_URL the settings now
open var/db.sqlite3. `copier update` cannot carry the old file across, because
git does not track it; this script moves it, with its -wal, -shm and -journal
companions, so local data survives the update.

It leaves the file where it is, and says so, when a DATABASE_URL (in the
environment or in .env) names it, since the service is configured to use it
there, or when var/db.sqlite3 already exists, since one of the two would be lost.

Idempotent: once the file has moved there is nothing left to move.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

OLD = Path("db.sqlite3")
NEW = Path("var") / "db.sqlite3"
COMPANIONS = ("-wal", "-shm", "-journal")
ENV_LINE = re.compile(r"^\s*(?:export\s+)?DATABASE_URL\s*=\s*(.*?)\s*$")


def say(message: str) -> None:
    print(f"copier-drf v0.2.0 migration: {message}", file=sys.stderr)


def database_urls() -> list[str]:
    """DATABASE_URL from the environment and from .env, where set."""
    urls = [os.environ.get("DATABASE_URL", "")]
    env_file = Path(".env")
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            match = ENV_LINE.match(line)
            if match:
                urls.append(match.group(1).strip("'\""))
    return [url for url in urls if url]


def names_old_database(url: str) -> bool:
    """Whether a sqlite:/// URL points at ./db.sqlite3 (relative URLs are relative to the root)."""
    if not url.startswith("sqlite:///"):
        return False
    path = Path(url.removeprefix("sqlite:///"))
    return path.resolve() == OLD.resolve()


def migrate() -> None:
    if not OLD.exists():
        return
    if any(names_old_database(url) for url in database_urls()):
        say(
            f"DATABASE_URL names {OLD}, so it stays where it is. To follow the new layout, "
            f"move it (`mv {OLD} {NEW}`) and remove DATABASE_URL, or keep DATABASE_URL as it is."
        )
        return
    if NEW.exists():
        say(
            f"both {OLD} and {NEW} exist, so neither was touched. The service now uses {NEW}; "
            f"keep the one you want (`mv {OLD} {NEW}` replaces the new one with the old)."
        )
        return
    NEW.parent.mkdir(exist_ok=True)
    for suffix in COMPANIONS:
        companion = Path(f"{OLD}{suffix}")
        if companion.exists():
            companion.rename(f"{NEW}{suffix}")
    OLD.rename(NEW)
    say(f"moved the local database {OLD} to {NEW}.")


if __name__ == "__main__":
    migrate()
