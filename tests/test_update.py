"""`copier update` from the previous release to the working tree, on projects a team has edited.

A throwaway git repository of the template holds two tagged versions: the
previous release, unpacked from its archive in tests/releases/, and the working
tree, tagged with the newest version in CHANGELOG.md. Each test renders the old
version with the real Copier CLI, makes the edits a team makes (a new app with
an endpoint and its test, an extra dependency, an edited README section, a
deleted file), commits, runs `copier update` as a user would, and checks:

- no conflict markers, no .rej files, no unmerged paths (Copier exits 0 even
  when it leaves them);
- the project is exactly a fresh render of the new version with the team's edits
  made to it: every edit kept, every template change arrived, nothing else;
- the answers file records the new version; nothing was committed (the
  copy-only post-copy task did not run); the migrations did their job;
- the updated project passes every gate of the harness.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import subprocess
import tarfile
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from .harness import (
    BUILD,
    ROOT,
    GateFailed,
    Project,
    clean_env,
    copier_command,
    copy_working_tree,
    remove,
    render,
    run,
)
from .matrix import FIXED_ANSWERS, Questionnaire
from .projects import project_services

RELEASES = Path(__file__).parent / "releases"


@dataclass(frozen=True)
class Release:
    """A release of the template, as its archive in tests/releases/ holds it.

    The archive (`tests/releases/<tag>.tar.gz`) holds what Copier reads of that
    release: copier.yml, hooks/ and template/. Keeping it in the repository makes
    the update tests independent of the clone: CI checkouts are often shallow and
    fetch no tags. After tagging a release, archive it with

        git archive -o tests/releases/vX.Y.Z.tar.gz vX.Y.Z copier.yml hooks template

    set PREVIOUS_RELEASE to it, delete the older archive, and open the next
    "## vX.Y.Z (unreleased)" section in CHANGELOG.md.
    """

    tag: str
    # Answers the release needs to render a project that passes its gates.
    answers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> Version:
        return Version(self.tag)

    @property
    def archive(self) -> Path:
        return RELEASES / f"{self.tag}.tar.gz"


# The release the update tests start from: the newest release before the working tree.
PREVIOUS_RELEASE = Release(tag="v0.1.0")


def changelog_version() -> Version:
    """The newest release in CHANGELOG.md: the version of the working tree."""
    match = re.search(r"^## v(\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert match, "CHANGELOG.md has no '## vX.Y.Z' section"
    return Version(match.group(1))


NEW_TAG = f"v{changelog_version()}"


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=team", "-c", "user.email=team@example.com", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise GateFailed(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="session")
def template_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository with the previous release and the working tree, both tagged."""
    assert changelog_version() > PREVIOUS_RELEASE.version, (
        f"CHANGELOG.md's newest release {NEW_TAG} is not newer than {PREVIOUS_RELEASE.tag}"
    )
    repo = tmp_path_factory.mktemp("template-versions")
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    assert PREVIOUS_RELEASE.archive.is_file(), f"{PREVIOUS_RELEASE.archive} is missing"
    with tarfile.open(PREVIOUS_RELEASE.archive) as archive:
        archive.extractall(repo, filter="data")
    commit_and_tag(repo, PREVIOUS_RELEASE.tag)
    for child in repo.iterdir():
        if child.name != ".git":
            remove(child) if child.is_dir() else child.unlink()
    copy_working_tree(repo)
    commit_and_tag(repo, NEW_TAG)
    return repo


def commit_and_tag(repo: Path, tag: str) -> None:
    git("add", "--all", cwd=repo)
    git("-c", "commit.gpgsign=false", "commit", "--quiet", "--allow-empty", "-m", tag, cwd=repo)
    git("tag", tag, cwd=repo)


# ---------------------------------------------------------------- the team's edits


def insert_after(path: Path, anchor: str, text: str) -> None:
    """Insert `text` after the first line equal to `anchor`."""
    lines = path.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.rstrip("\n") == anchor:
            lines.insert(number + 1, text)
            path.write_text("".join(lines))
            return
    raise AssertionError(f"{path}: no line {anchor!r} to edit after")


def insert_before_closing(path: Path, opening: str, text: str) -> None:
    """Insert `text` as the last item of the list that starts at the line `opening`."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if line.rstrip("\n") == opening)
    end = next(n for n in range(start, len(lines)) if lines[n].rstrip("\n") == "]")
    lines.insert(end, text)
    path.write_text("".join(lines))


INVOICE_APP = {
    "apps.py": """from django.apps import AppConfig


class InvoicesConfig(AppConfig):
    name = "{slug}.invoices"
    label = "invoices"
    verbose_name = "Invoices"
""",
    "views.py": '''"""Invoices: the figures finance asks for."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class InvoiceSummarySerializer(serializers.Serializer[dict[str, Any]]):
    open = serializers.IntegerField()
    currency = serializers.CharField()


class InvoiceSummaryView(APIView):
    """How many invoices are open, in the company's currency."""

    @extend_schema(responses=InvoiceSummarySerializer)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        summary = {{"open": 0, "currency": "EUR"}}
        return Response(InvoiceSummarySerializer(summary, context={{"request": request}}).data)
''',
    "urls.py": """from django.urls import path

from .views import InvoiceSummaryView

urlpatterns = [
    path("summary/", InvoiceSummaryView.as_view(), name="invoice-summary"),
]
""",
}

INVOICE_TEST = '''"""The invoice summary endpoint."""

from tests.helpers import api_url


def test_summary_for_a_signed_in_user(auth_client):
    response = auth_client.get(api_url("invoice-summary"))

    assert response.status_code == 200
    assert response.json() == {"open": 0, "currency": "EUR"}
'''

EXTRA_DEPENDENCY = "python-dateutil"


def team_edits(root: Path, slug: str) -> None:
    """What a team does in its first months, made to the project at `root`."""
    # A new app, registered in INSTALLED_APPS, with an endpoint and its test.
    app = root / slug / "invoices"
    app.mkdir()
    (app / "__init__.py").touch()
    for name, text in INVOICE_APP.items():
        (app / name).write_text(text.format(slug=slug))
    (root / "tests" / "invoices").mkdir()
    (root / "tests" / "invoices" / "__init__.py").touch()
    (root / "tests" / "invoices" / "test_views.py").write_text(INVOICE_TEST)
    base = root / "config" / "settings" / "base.py"
    insert_before_closing(base, "INSTALLED_APPS = [", f'    "{slug}.invoices",\n')
    insert_after(
        root / "config" / "urls.py",
        f'    path("auth/", include("{slug}.users.urls")),',
        f'    path("invoices/", include("{slug}.invoices.urls")),\n',
    )
    # An extra dependency, added with uv (the caller locks).
    added = run(["uv", "add", "--frozen", f"{EXTRA_DEPENDENCY}>=2.9,<3"], cwd=root)
    assert added.returncode == 0, added.stderr
    # The README's layout section, edited.
    insert_after(
        root / "README.md",
        f"{slug}/users/      custom User model and the auth endpoints",
        f"{slug}/invoices/   invoice summaries for finance\n",
    )
    # A file they do not want: they deploy to Kubernetes, not with compose.
    (root / "compose.yaml").unlink()


def assert_team_edits_kept(root: Path, slug: str) -> None:
    """Spelled out, although the comparison with a fresh render implies it."""
    assert (root / slug / "invoices" / "views.py").is_file()
    assert f'"{slug}.invoices",' in (root / "config" / "settings" / "base.py").read_text()
    assert "invoices.urls" in (root / "config" / "urls.py").read_text()
    assert f'"{EXTRA_DEPENDENCY}>=2.9,<3"' in (root / "pyproject.toml").read_text()
    assert f'name = "{EXTRA_DEPENDENCY}"' in (root / "uv.lock").read_text()
    assert "invoice summaries for finance" in (root / "README.md").read_text()
    assert not (root / "compose.yaml").exists()


# ---------------------------------------------------------------- migrations


@dataclass(frozen=True)
class MigrationCheck:
    """What a release's migration must do: set the scene before, look after."""

    version: Version
    before_update: Callable[[Project], None]
    after_update: Callable[[Project], None]


LOCAL_NOTE = "a row the team keeps in its local database"


def create_local_data(project: Project) -> None:
    """The local SQLite database of the previous release, at the root, with the team's data."""
    settings = (project.path / "config" / "settings" / "base.py").read_text()
    assert "BASE_DIR / 'db.sqlite3'" in settings, "the previous release has no db.sqlite3"
    with closing(sqlite3.connect(project.path / "db.sqlite3")) as connection:
        connection.execute("CREATE TABLE team_notes (note TEXT)")
        connection.execute("INSERT INTO team_notes VALUES (?)", (LOCAL_NOTE,))
        connection.commit()


def local_data_moved_to_var(project: Project) -> None:
    """The file moved, git ignores it, and the new local settings open it."""
    assert not (project.path / "db.sqlite3").exists(), "db.sqlite3 was left at the root"
    assert (project.path / "var" / "db.sqlite3").is_file()
    ignored = git("status", "--porcelain", "--ignored", "var", cwd=project.path)
    assert "!! var/db.sqlite3" in ignored, ignored
    read = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT note FROM team_notes')\n"
        "    print(cursor.fetchone()[0])"
    )
    output = project.gate(
        "manage.py shell (local settings)",
        project.uv_run("python", "manage.py", "shell", "-c", read),
        extra_env={"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": ""},
    )
    assert output.strip().splitlines()[-1] == LOCAL_NOTE, output


MIGRATION_CHECKS = [
    MigrationCheck(Version("0.2.0"), create_local_data, local_data_moved_to_var),
]


# ---------------------------------------------------------------- checks


def project_files(root: Path) -> dict[str, bytes]:
    """Files git would consider (tracked or not, never ignored), by path."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=root)
    return {
        name: (root / name).read_bytes()
        for name in sorted(set(filter(None, listed.split("\0"))))
        if (root / name).is_file()
    }


def assert_no_conflicts(root: Path) -> None:
    status = git("status", "--porcelain", cwd=root).splitlines()
    unmerged = [line for line in status if line[:2] in {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}]
    assert not unmerged, f"unmerged paths: {unmerged}"
    rejects = [
        str(path.relative_to(root))
        for path in root.rglob("*.rej")
        if path.relative_to(root).parts[0] not in {".git", ".venv"}
    ]
    assert not rejects, f".rej files left: {rejects}"
    markers = [
        f"{name}:{number}"
        for name, content in project_files(root).items()
        for number, line in enumerate(content.decode(errors="replace").splitlines(), 1)
        if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "======="
    ]
    assert not markers, f"conflict markers left: {markers}"


def assert_same_files(updated: Path, expected: Path, *, ignore: set[str]) -> None:
    got, want = project_files(updated), project_files(expected)
    assert sorted(set(got) - ignore) == sorted(set(want) - ignore), (
        f"files only in the updated project: {sorted(set(got) - set(want) - ignore)}; "
        f"only in a fresh render: {sorted(set(want) - set(got) - ignore)}"
    )
    differences = []
    for name in sorted(set(got) - ignore):
        if got[name] != want[name]:
            diff = difflib.unified_diff(
                want[name].decode(errors="replace").splitlines(),
                got[name].decode(errors="replace").splitlines(),
                f"fresh render + team edits: {name}",
                f"updated project: {name}",
                lineterm="",
            )
            differences.append("\n".join(list(diff)[:40]))
    assert not differences, "\n\n".join(differences)


def answers(root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((root / ".copier-answers.yml").read_text()))


def copier(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return run(copier_command(*args), cwd=project.path, env=clean_env())


def data_args(values: Mapping[str, Any]) -> list[str]:
    args = []
    for key, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        args += ["--data", f"{key}={text}"]
    return args


# ---------------------------------------------------------------- the tests

UPDATES = [
    pytest.param({}, {}, id="same-answers"),
    pytest.param(
        {"use_redis": False, "database": "sqlite"},
        {"pagination": "page_number", "use_redis": True},
        id="changed-answers",
    ),
]


@pytest.mark.usefixtures("services")
@pytest.mark.parametrize(("old_answers", "changed"), UPDATES)
def test_update_from_the_previous_release(
    request: pytest.FixtureRequest,
    template_versions: Path,
    tmp_path: Path,
    old_answers: dict[str, Any],
    changed: dict[str, Any],
) -> None:
    name = f"update-{request.node.callspec.id}"
    rendered = {**PREVIOUS_RELEASE.answers, **old_answers}
    final = {**Questionnaire().defaults({**rendered, **changed}), **rendered, **changed}
    destination = BUILD / name
    remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    crossed = [
        check
        for check in MIGRATION_CHECKS
        if PREVIOUS_RELEASE.version < check.version <= changelog_version()
    ]
    with project_services(name, final) as env:
        project = Project(name=name, path=destination, answers=final, env=env)

        # The team renders the previous release, lives with it, and edits it.
        result = render(
            template_versions,
            destination,
            {**FIXED_ANSWERS, **rendered},
            vcs_ref=PREVIOUS_RELEASE.tag,
        )
        if result.returncode != 0:
            raise project.fail("copier copy (previous release)", "copier copy", result.stderr)
        slug = answers(destination)["project_slug"]
        for check in crossed:
            check.before_update(project)
        team_edits(destination, slug)
        project.gate("uv lock", ["uv", "lock"])
        git("add", "--all", cwd=destination)
        git("-c", "commit.gpgsign=false", "commit", "--quiet", "-m", "Invoices", cwd=destination)
        head = git("rev-parse", "HEAD", cwd=destination)
        assert copier(project, "check-update", "--quiet").returncode == 2, "no newer release seen"

        # The update, as a user runs it.
        result = copier(project, "update", "--trust", "--defaults", *data_args(changed))
        if result.returncode != 0:
            raise project.fail("copier update", "copier update", result.stdout + result.stderr)

        assert_no_conflicts(destination)
        assert git("rev-parse", "HEAD", cwd=destination) == head, "the update made a commit"
        recorded = answers(destination)
        assert recorded["_commit"] == NEW_TAG
        assert {key: recorded[key] for key in final} == final
        # Questions the previous release did not ask get their defaults:
        # error tracking with Sentry (off until SENTRY_DSN is set), no manifests.
        assert recorded["error_tracking"] == "sentry"
        assert (destination / slug / "core" / "sentry.py").is_file()
        assert recorded["kubernetes"] is False
        assert not (destination / "deploy" / "k8s").exists()

        # Exactly a fresh render of the new version, with the team's edits.
        expected = tmp_path / "expected"
        result = render(
            template_versions,
            expected,
            {**FIXED_ANSWERS, **final},
            vcs_ref=NEW_TAG,
            extra_args=["--skip-tasks"],
        )
        assert result.returncode == 0, result.stderr
        git("init", "--quiet", cwd=expected)
        team_edits(expected, slug)
        # uv.lock is not rendered: post_update.py refreshed it (checked by `uv sync --locked`).
        assert_same_files(destination, expected, ignore={"uv.lock"})
        assert_team_edits_kept(destination, slug)

        project.check_files()
        project.install()
        for check in crossed:
            check.after_update(project)
        project.lint()
        project.django_checks()
        project.tests()
    remove(destination)


def test_a_fresh_clone_of_a_new_project_has_var(template_versions: Path, tmp_path: Path) -> None:
    """SQLite does not create directories: var/ must reach every clone, empty of data."""
    project = tmp_path / "project"
    result = render(template_versions, project, FIXED_ANSWERS, vcs_ref=NEW_TAG)
    assert result.returncode == 0, result.stderr
    (project / "var" / "db.sqlite3").write_bytes(b"local data")
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(project), str(clone), cwd=tmp_path)
    assert sorted(p.name for p in (clone / "var").iterdir()) == [".gitignore"]
    settings = (clone / "config" / "settings" / "base.py").read_text()
    assert "BASE_DIR / 'var' / 'db.sqlite3'" in settings
