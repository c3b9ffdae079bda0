"""Rendered projects for tests: render, give them their own services, install, clean up."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis

from .harness import (
    BUILD,
    POSTGRES_URL,
    PRODUCTION_SECRETS,
    REDIS_URL,
    ROOT,
    GateFailed,
    Project,
    clean_env,
    remove,
    render,
)
from .matrix import FIXED_ANSWERS, Questionnaire, short_hash


@contextmanager
def rendered_project(
    template: Path,
    answers: Mapping[str, Any],
    name: str,
    *,
    install: bool = True,
    worker_venv: bool = False,
) -> Iterator[Project]:
    """Render `answers` (defaults for the rest) with the real Copier and set up its services.

    The project gets its own PostgreSQL database and Redis key prefix when its
    answers use them, unique per checkout and process. It is deleted when the
    block ends without an error, and kept for inspection otherwise.

    With `worker_venv` its environment is this test process's own for the
    project's Python and Django versions (see worker_environment), not a
    `.venv` of its own: only for a project that lives within one test.
    """
    combination = {**Questionnaire().defaults(answers), **answers}
    destination = BUILD / name
    remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = render(template, destination, {**FIXED_ANSWERS, **answers})
    render_seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise GateFailed(
            f"[{name}] gate 'copier copy' failed\n{result.stdout}\n{result.stderr}\n"
            f"(output kept at {destination})"
        )
    with project_services(name, combination) as env:
        if worker_venv:
            env["UV_PROJECT_ENVIRONMENT"] = str(worker_environment(combination))
        project = Project(name=name, path=destination, answers=combination, env=env)
        project.timings["copier copy"] = render_seconds
        if install:
            project.install()
        yield project
    remove(destination)


def worker_environment(combination: Mapping[str, Any]) -> Path:
    """The virtual environment that this test process lends to projects of these versions.

    `uv sync --locked` makes it exactly the project's (it adds and removes
    what differs from the last project's), and the files it links from uv's
    cache keep their times, so the bytecode compiled for the last project
    under PYTHONPYCACHEPREFIX, which is keyed on the files' paths, is still
    valid: Django, DRF, mypy's plugins and pytest are compiled once per test
    process and version instead of once per project (about 5 s each).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    versions = f"py{combination['python_version']}-dj{combination['django_version']}"
    return BUILD / "venvs" / f"{worker}-{versions}"


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh database `name` (and room for pytest-django's test_<name>), dropped afterwards."""

    def drop(conn: psycopg.Connection) -> None:
        for db in (name, f"test_{name}"):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
        drop(conn)
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
            drop(conn)


@contextmanager
def redis_prefix(prefix: str) -> Iterator[str]:
    """A key prefix of the shared Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield prefix
    finally:
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            client.delete(key)


@contextmanager
def project_services(name: str, combination: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """The environment of project `name`: its own database and Redis key prefix, if it uses them.

    Yields the variables its gates run with; the database is dropped and the
    keys deleted when the block ends.
    """
    key = f"h{short_hash({'id': name, 'root': str(ROOT), 'pid': os.getpid()})}"
    with ExitStack() as stack:
        env = clean_env(CACHE_KEY_PREFIX=key)
        if combination["database"] == "postgresql":
            env["DATABASE_URL"] = stack.enter_context(postgres_database(key))
        if combination["use_redis"]:
            stack.enter_context(redis_prefix(key))
            env["REDIS_URL"] = REDIS_URL
        yield env


def production_env(project: Project, **extra: str) -> dict[str, str]:
    """The project's environment under production settings, on loopback.

    The harness plays the TLS proxy in front of the service: it connects from
    127.0.0.1, which is the one trusted proxy, and sends X-Forwarded-Proto. The
    schema is public, so that clients such as schemathesis can read it.
    """
    env = {
        **project.env,
        **PRODUCTION_SECRETS,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_TRUSTED_PROXIES": "127.0.0.1",
        "DJANGO_API_DOCS_PUBLIC": "true",
    }
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"] = f"sqlite:///{project.path / 'production.sqlite3'}"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(
    project: Project,
    *,
    workers: int | None = 3,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    app: str | None = "config.wsgi:application",
) -> Iterator[str]:
    """Migrate, then serve the project with gunicorn on loopback; yields the base URL.

    Runs `gunicorn <app>` from the project's root (so its gunicorn.conf.py
    applies when it has one) under `env` (production settings by default);
    `app=None` leaves the choice to gunicorn.conf.py, which serves config.asgi
    when GUNICORN_WORKER_CLASS is uvicorn's worker; `workers=None` leaves it
    the number of workers too. gunicorn's output goes to
    gunicorn-<port>.log in the project. Requests must send
    `X-Forwarded-Proto: https`, as the TLS proxy in front of production does.
    """
    env = dict(env) if env is not None else production_env(project)
    project.gate(
        "migrate", project.uv_run("python", "manage.py", "migrate", "--no-input"), extra_env=env
    )
    port = free_port()
    log_path = project.path / f"gunicorn-{port}.log"
    command = project.uv_run(
        "gunicorn",
        *([app] if app else []),
        *(["--workers", str(workers)] if workers is not None else []),
        "--bind",
        f"127.0.0.1:{port}",
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=project.path, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise project.fail("gunicorn", command, log_path.read_text())
            try:
                request = urllib.request.Request(
                    f"{base_url}/health/live/", headers={"X-Forwarded-Proto": "https"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise project.fail("gunicorn", command, "not answering\n" + log_path.read_text())
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
