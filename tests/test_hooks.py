"""The hook scripts on their own: copy-only set-up, idempotence, and each release's migration.

They run here as Copier runs them (`python hooks/<script>.py` in the project's
root) on small stand-in projects, so every case takes a second or two. The
update tests (test_update.py) run them inside real `copier update`s.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .harness import ROOT, clean_env, copier_command

HOOKS = ROOT / "hooks"
COPIER_YML = yaml.safe_load((ROOT / "copier.yml").read_text())

# A project that `uv lock` resolves offline in a moment: no dependencies.
PYPROJECT = """[project]
name = "standin"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = []

[tool.uv]
package = false
"""


def run_hook(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOOKS / script)],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        check=False,
    )


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def commits(cwd: Path) -> list[str]:
    return git(cwd, "log", "--format=%s").splitlines()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A freshly rendered stand-in project, not in any git repository."""
    path = tmp_path / "project"
    path.mkdir()
    (path / "pyproject.toml").write_text(PYPROJECT)
    (path / "README.md").write_text("# Stand-in\n")
    return path


# ---------------------------------------------------------------- copier.yml


def test_tasks_run_on_copy_only() -> None:
    """During an update Copier renders three times; a task must not run then."""
    tasks = COPIER_YML["_tasks"]
    assert tasks
    for task in tasks:
        assert task.get("when") == "{{ _copier_operation == 'copy' }}", task


def test_every_migration_script_exists_and_is_documented() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    updating = (ROOT / "docs" / "updating.md").read_text()
    versioned = [m for m in COPIER_YML["_migrations"] if "version" in m]
    assert versioned, "no release migration"
    for migration in COPIER_YML["_migrations"]:
        script = migration["command"][-1].removeprefix("{{ _copier_conf.src_path }}/")
        assert (ROOT / script).is_file(), script
        if "version" in migration:
            version = migration["version"]
            heading = rf"^## {re.escape(version)}\b(.*?)(?=^## |\Z)"
            section = re.search(heading, changelog, re.MULTILINE | re.DOTALL)
            assert section, f"CHANGELOG.md has no section for {version}"
            assert "### Upgrading" in section.group(1), f"{version}: no Upgrading note"
            assert script in section.group(1), f"{version}: CHANGELOG does not name {script}"
            assert script in updating, f"docs/updating.md does not describe {script}"
    # The version-less entry (uv lock) runs after every update, so it comes last.
    assert "version" not in COPIER_YML["_migrations"][-1]


# ---------------------------------------------------------------- post_copy.py


def test_post_copy_locks_and_makes_the_first_commit_once(project: Path) -> None:
    first = run_hook("post_copy.py", project)
    assert first.returncode == 0, first.stderr
    assert (project / "uv.lock").is_file()
    assert commits(project) == ["Render the service from copier-drf"]
    assert git(project, "status", "--porcelain") == ""
    lock = (project / "uv.lock").read_bytes()

    again = run_hook("post_copy.py", project)
    assert again.returncode == 0, again.stderr
    assert commits(project) == ["Render the service from copier-drf"]
    assert (project / "uv.lock").read_bytes() == lock


def test_copier_copy_without_uv_keeps_the_project_and_says_what_to_do(
    template_repo: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "no-uv"
    without_uv = os.pathsep.join(
        d for d in clean_env()["PATH"].split(os.pathsep) if not (Path(d) / "uv").exists()
    )
    result = subprocess.run(
        copier_command(
            "copy",
            "--trust",
            "--defaults",
            "--data",
            "project_name=No Uv Yet",
            str(template_repo),
            str(destination),
        ),
        env=clean_env(PATH=without_uv),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "`uv` is not installed. Install uv (`pip install uv`)" in result.stderr
    assert (destination / "manage.py").is_file()
    assert (destination / "no_uv_yet" / "orders" / "models.py").is_file()
    assert not (destination / "uv.lock").exists()
    assert commits(destination) == ["Render the service from copier-drf"]


def test_post_copy_commits_nothing_in_a_repository_with_history(project: Path) -> None:
    """`copier recopy` runs as a copy: its changes are left for the team to review."""
    assert run_hook("post_copy.py", project).returncode == 0
    (project / "README.md").write_text("# Stand-in, recopied\n")

    result = run_hook("post_copy.py", project)

    assert result.returncode == 0, result.stderr
    assert commits(project) == ["Render the service from copier-drf"]
    assert git(project, "status", "--porcelain") == " M README.md\n"
    assert "nothing was committed" in result.stderr


def test_post_copy_makes_the_first_commit_in_an_empty_repository(project: Path) -> None:
    git(project, "init", "--quiet")
    result = run_hook("post_copy.py", project)
    assert result.returncode == 0, result.stderr
    assert commits(project) == ["Render the service from copier-drf"]


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """A repository with history and uncommitted work of its own."""
    path = tmp_path / "monorepo"
    path.mkdir()
    git(path, "init", "--quiet")
    (path / ".gitignore").write_text("/build/\n")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "monorepo")
    (path / "work-in-progress.txt").write_text("not ready\n")
    return path


def test_post_copy_leaves_an_enclosing_repository_alone(monorepo: Path) -> None:
    project = monorepo / "services" / "api"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)

    result = run_hook("post_copy.py", project)

    assert result.returncode == 0, result.stderr
    assert not (project / ".git").exists()
    assert commits(monorepo) == ["monorepo"]
    assert git(monorepo, "diff", "--cached", "--name-only") == ""
    assert f"inside the git repository at {monorepo.resolve()}" in result.stderr


def test_post_copy_gives_a_project_ignored_by_the_enclosing_repository_its_own(
    monorepo: Path,
) -> None:
    project = monorepo / "build" / "api"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)

    result = run_hook("post_copy.py", project)

    assert result.returncode == 0, result.stderr
    assert git(project, "rev-parse", "--show-toplevel").strip() == str(project.resolve())
    assert commits(project) == ["Render the service from copier-drf"]
    assert commits(monorepo) == ["monorepo"]
    assert git(monorepo, "status", "--porcelain") == "?? work-in-progress.txt\n"


# ---------------------------------------------------------------- post_update.py


def test_post_update_refreshes_the_lock_and_is_idempotent(project: Path) -> None:
    assert run_hook("post_copy.py", project).returncode == 0
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text.replace('version = "0.1.0"', 'version = "0.2.0"'))

    first = run_hook("post_update.py", project)
    assert first.returncode == 0, first.stderr
    lock = (project / "uv.lock").read_bytes()
    assert b'version = "0.2.0"' in lock

    again = run_hook("post_update.py", project)
    assert again.returncode == 0, again.stderr
    assert (project / "uv.lock").read_bytes() == lock


def test_post_update_leaves_a_conflicted_pyproject_to_the_team(project: Path) -> None:
    conflicted = "<<<<<<< before updating\nx\n=======\ny\n>>>>>>> after updating\n"
    (project / "pyproject.toml").write_text(PYPROJECT + conflicted)

    result = run_hook("post_update.py", project)

    assert result.returncode == 0
    assert not (project / "uv.lock").exists()
    assert "resolve them, then run `uv lock`" in result.stderr


# ---------------------------------------------------------------- migrations/v0_2_0.py

MIGRATION = "migrations/v0_2_0.py"


def make_database(path: Path, marker: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE marker (value TEXT)")
        connection.execute("INSERT INTO marker VALUES (?)", (marker,))
    connection.close()


def read_marker(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("SELECT value FROM marker").fetchone()[0])
    finally:
        connection.close()


def test_v0_2_0_moves_the_local_database_to_var(project: Path) -> None:
    make_database(project / "db.sqlite3", "team data")
    (project / "db.sqlite3-wal").write_bytes(b"")
    (project / "var").mkdir()  # from var/.gitignore, which the update brings

    result = run_hook(MIGRATION, project)

    assert result.returncode == 0, result.stderr
    assert not (project / "db.sqlite3").exists()
    assert not (project / "db.sqlite3-wal").exists()
    assert read_marker(project / "var" / "db.sqlite3") == "team data"
    assert (project / "var" / "db.sqlite3-wal").exists()
    assert "moved the local database db.sqlite3 to var/db.sqlite3" in result.stderr

    again = run_hook(MIGRATION, project)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert read_marker(project / "var" / "db.sqlite3") == "team data"


def test_v0_2_0_creates_var_when_it_is_missing(project: Path) -> None:
    make_database(project / "db.sqlite3", "team data")
    assert run_hook(MIGRATION, project).returncode == 0
    assert read_marker(project / "var" / "db.sqlite3") == "team data"


def test_v0_2_0_does_nothing_without_a_local_database(project: Path) -> None:
    result = run_hook(MIGRATION, project)
    assert result.returncode == 0
    assert result.stderr == ""
    assert not (project / "var").exists()


@pytest.mark.parametrize(
    "line",
    [
        "DATABASE_URL=sqlite:///db.sqlite3",
        'export DATABASE_URL="sqlite:///db.sqlite3"',
        "DATABASE_URL = 'sqlite:///{project}/db.sqlite3'",
    ],
)
def test_v0_2_0_keeps_a_database_that_dotenv_names(project: Path, line: str) -> None:
    make_database(project / "db.sqlite3", "team data")
    (project / ".env").write_text(f"DJANGO_DEBUG=true\n{line.format(project=project)}\n")

    result = run_hook(MIGRATION, project)

    assert result.returncode == 0
    assert read_marker(project / "db.sqlite3") == "team data"
    assert not (project / "var" / "db.sqlite3").exists()
    assert "DATABASE_URL names db.sqlite3" in result.stderr


def test_v0_2_0_keeps_a_database_that_the_environment_names(project: Path) -> None:
    make_database(project / "db.sqlite3", "team data")
    result = run_hook(MIGRATION, project, DATABASE_URL=f"sqlite:///{project}/db.sqlite3")
    assert result.returncode == 0
    assert read_marker(project / "db.sqlite3") == "team data"


def test_v0_2_0_moves_the_database_when_database_url_points_elsewhere(project: Path) -> None:
    make_database(project / "db.sqlite3", "team data")
    (project / ".env").write_text("# DATABASE_URL=sqlite:///db.sqlite3\n")

    result = run_hook(MIGRATION, project, DATABASE_URL="postgres://db.example.com/app")

    assert result.returncode == 0
    assert read_marker(project / "var" / "db.sqlite3") == "team data"


def test_v0_2_0_never_overwrites_a_database_in_var(project: Path) -> None:
    make_database(project / "db.sqlite3", "old data")
    (project / "var").mkdir()
    make_database(project / "var" / "db.sqlite3", "new data")

    result = run_hook(MIGRATION, project)

    assert result.returncode == 0
    assert read_marker(project / "db.sqlite3") == "old data"
    assert read_marker(project / "var" / "db.sqlite3") == "new data"
    assert "both db.sqlite3 and var/db.sqlite3 exist" in result.stderr
