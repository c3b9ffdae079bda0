"""Render a project with the real Copier, then run its gates one by one.

A gate that fails raises GateFailed naming the combination, the gate and the
command, with the end of its output and the path of the project, which is
kept for inspection (it is deleted only when every gate passed).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.dev import with_pyenv_pythons

from .matrix import short_hash

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("HARNESS_BUILD_DIR", ROOT / "build" / "harness"))
PYCACHE = BUILD.parent / "pycache"
POSTGRES_URL = os.environ.get("HARNESS_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("HARNESS_REDIS_URL", "redis://127.0.0.1:6379/0")

# Variables of the harness's own environment that must not leak into a project.
LEAKY = ("VIRTUAL_ENV", "DJANGO_", "DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX", "PYTHONPATH")
JINJA_LEFTOVER = re.compile(r"\{\{\s|\s\}\}|\{%-?\s|\s-?%\}|\{#\s")
EMPTY_ALLOWED = {"__init__.py", "py.typed"}


# Values that satisfy the production settings' required variables in tests.
PRODUCTION_SECRETS = {
    "DJANGO_SECRET_KEY": "harness-production-secret-" + "s" * 40,
    "JWT_SIGNING_KEY": "harness-production-jwt-key-" + "j" * 40,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Nothing listens there: a test that sends mail points EMAIL_URL at its own server.
    "EMAIL_URL": "smtp://127.0.0.1:1",
    "ACCOUNT_PASSWORD_RESET_URL": "https://app.example.com/reset?uid={uid}&token={token}",
    "ACCOUNT_EMAIL_VERIFY_URL": "https://app.example.com/verify?uid={uid}&token={token}",
}
DJANGO_GATES = (
    ("check --deploy", ("check",), {"deploy": True, "fail_level": "WARNING"}),
    ("makemigrations --check", ("makemigrations",), {"check": True, "dry_run": True}),
    (
        "spectacular --validate",
        ("spectacular",),
        {"validate": True, "fail_on_warn": True, "file": "/dev/null"},
    ),
)


class GateFailed(AssertionError):
    pass


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY)}
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    with_pyenv_pythons(env)
    # Bytecode goes to one directory outside the projects (their trees stay
    # clean): a project's later processes (its test suite after its checks,
    # each gunicorn worker) reuse what its first one compiled instead of
    # compiling Django and every library again, about two seconds each.
    # PYTHONDONTWRITEBYTECODE, set in some shells and CI machines, would undo
    # that: every process compiled everything again (3.2 s instead of 0.8 s to
    # start a project's Django, measured).
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Projects under BUILD never see the template repository around them, so
    # git in a project (a hook's `git add --all`, a gate) cannot touch it.
    env["GIT_CEILING_DIRECTORIES"] = str(BUILD.resolve())
    env.update(extra)
    return env


def run(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def copier_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "copier", *args]


def render(
    template: Path,
    destination: Path,
    answers: Mapping[str, Any],
    *,
    vcs_ref: str = "HEAD",
    extra_args: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`copier copy` with these answers (and defaults for the rest)."""
    args = ["copy", "--trust", "--defaults", "--vcs-ref", vcs_ref, *extra_args]
    for key, value in answers.items():
        args += ["--data", f"{key}={_yaml_scalar(value)}"]
    return run(copier_command(*args, str(template), str(destination)), cwd=destination.parent)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Project:
    """A rendered project and the environment its gates run in."""

    name: str
    path: Path
    answers: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def fail(self, gate: str, command: Sequence[str] | str, output: str) -> GateFailed:
        tail = "\n".join(output.strip().splitlines()[-60:])
        cmd = command if isinstance(command, str) else " ".join(command)
        return GateFailed(
            f"[{self.name}] gate '{gate}' failed\n$ {cmd}\n{tail}\n(project kept at {self.path})"
        )

    def gate(
        self, gate: str, command: Sequence[str], *, extra_env: Mapping[str, str] | None = None
    ) -> str:
        env = {**self.env, **(extra_env or {})}
        started = time.perf_counter()
        result = run(command, cwd=self.path, env=env)
        self.timings[gate] = self.timings.get(gate, 0.0) + time.perf_counter() - started
        output = result.stdout + result.stderr
        if result.returncode != 0:
            raise self.fail(gate, command, output)
        return output

    def uv_run(self, *args: str) -> list[str]:
        return ["uv", "run", "--locked", "--no-sync", *args]

    # ------------------------------------------------------------------ gates

    def check_files(self) -> None:
        """No leftover Jinja syntax, no template suffixes, no empty files."""
        problems = []
        for path in sorted(self.path.rglob("*")):
            relative = path.relative_to(self.path)
            # var/ holds the service's local state (its SQLite database), not rendered files.
            if relative.parts[0] in {".git", ".venv", "var"} or not path.is_file():
                continue
            if "__pycache__" in relative.parts or ".mypy_cache" in relative.parts:
                continue
            if path.suffix == ".jinja":
                problems.append(f"{relative}: template suffix left")
            if path.stat().st_size == 0 and path.name not in EMPTY_ALLOWED:
                problems.append(f"{relative}: empty file")
            if path.name == "uv.lock":
                continue
            text = path.read_text(errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                if JINJA_LEFTOVER.search(line) and not _allowed_braces(relative, line):
                    problems.append(f"{relative}:{number}: Jinja syntax left: {line.strip()}")
        if problems:
            raise self.fail("rendered files", "scan", "\n".join(problems))

    def install(self) -> None:
        self.gate("install", ["uv", "sync", "--locked"])

    def lint(self) -> None:
        self.gate("ruff check", self.uv_run("ruff", "check", "--no-cache", "."))
        self.gate("ruff format", self.uv_run("ruff", "format", "--check", "--no-cache", "."))
        with self.mypy_cache() as cache:
            self.gate("mypy", self.uv_run("mypy", "--cache-dir", cache, "."))

    @contextmanager
    def mypy_cache(self) -> Iterator[str]:
        """A mypy cache shared by the projects with this one's INSTALLED_APPS and versions.

        django-stubs' plugin makes mypy drop its whole cache (the stubs of
        Django and DRF, most of its work) when INSTALLED_APPS differ, and they
        name the project. Projects that share them, and the versions of
        Python and Django, share a cache: mypy checks again only what differs.
        It compares each module's source, options and plugin data with what
        it cached, so a stale entry is never used. One test process at a time
        uses a cache; another that wants it meanwhile runs without one.
        """
        settings = (self.path / "config" / "settings" / "base.py").read_text()
        apps = re.search(r"^INSTALLED_APPS = \[$.*?^\]$", settings, re.M | re.S)
        if apps is None:
            raise self.fail("mypy", "config/settings/base.py", "INSTALLED_APPS not found")
        key = short_hash(
            {
                "apps": apps.group(0),
                "python": self.answers["python_version"],
                "django": self.answers["django_version"],
            }
        )
        cache = BUILD / "mypy" / key
        cache.mkdir(parents=True, exist_ok=True)
        with open(BUILD / "mypy" / f"{key}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield os.devnull
            else:
                yield str(cache)

    def django_checks(self) -> None:
        """check --deploy, makemigrations --check and spectacular --validate.

        They run in one Python process under production settings (the Makefile's
        `make check` runs them one by one): Django starts once instead of three
        times. Each gate prints a marker first, so a failure still names its gate.
        """
        env = {
            **PRODUCTION_SECRETS,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DATABASE_URL": self.env.get(
                "DATABASE_URL", f"sqlite:///{self.path / 'deploy-check.sqlite3'}"
            ),
            "REDIS_URL": self.env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "DJANGO_LOG_LEVEL": "WARNING",
        }
        script = "\n".join(
            [
                "import django",
                "from django.core.management import call_command",
                "django.setup()",
                *(
                    f"print('@@gate {title}', flush=True); call_command(*{args!r}, **{kwargs!r})"
                    for title, args, kwargs in DJANGO_GATES
                ),
            ]
        )
        command = self.uv_run("python", "-c", script)
        started = time.perf_counter()
        result = run(command, cwd=self.path, env={**self.env, **env})
        self.timings["django checks"] = time.perf_counter() - started
        output = result.stdout + result.stderr
        if result.returncode != 0:
            started_gates = re.findall(r"^@@gate (.+)$", result.stdout, re.M)
            gate = started_gates[-1] if started_gates else "django setup"
            raise self.fail(gate, f"manage.py {gate} (production settings)", output)

    def tests(self) -> str:
        return self.gate("pytest", ["make", "--no-print-directory", "test"])


def _allowed_braces(relative: Path, line: str) -> bool:
    """Braces that are not Jinja: GitHub Actions expressions, Django's templates."""
    if relative.parts[:2] == (".github", "workflows"):
        return "${{" in line
    return "templates" in relative.parts[:-1]


TIMINGS = BUILD.parent / "harness-timings.jsonl"


def record_timings(project: Project) -> None:
    """Append this project's gate timings to build/harness-timings.jsonl (summed at the end)."""
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    with TIMINGS.open("a") as file:
        file.write(json.dumps({"name": project.name, "timings": project.timings}) + "\n")


def ensure_debian_package(package: str, command: str) -> str:
    """The path of `command`, installing Debian's `package` first when it is missing.

    The test machines run as root with Debian's archive reachable; the package
    lists are refreshed only when the first attempt cannot find the package.
    """
    found = shutil.which(command)
    if found:
        return found
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    found = shutil.which(command)
    if not found:
        raise RuntimeError(f"Debian's {package} is installed, but `{command}` is not on PATH")
    return found


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def copy_working_tree(destination: Path) -> None:
    """Copy the working tree's files (tracked and new, not ignored ones) into `destination`."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def snapshot_template(destination: Path) -> Path:
    """Copy the working tree (tracked and new files, not ignored ones) into a fresh git repo.

    The harness renders this snapshot, so what is tested is exactly the
    working tree, uncommitted edits included, and never an older tag.
    """
    copy_working_tree(destination)
    git = [
        "git",
        "-c",
        "user.name=harness",
        "-c",
        "user.email=harness@localhost",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=destination, check=True)
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=destination, check=True)
    return destination
