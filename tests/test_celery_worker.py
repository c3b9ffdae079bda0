"""A real Celery worker and beat of a rendered service, against the real Redis.

One project with background_tasks=celery (the defaults: PostgreSQL, Redis,
JWT) is rendered and installed once per test process. Its worker and beat run
as `celery -A config worker` and `celery -A config beat` from the project's
environment under production settings, with the broker under the project's
own key prefix of the shared Redis, and its mail goes to a real SMTP server
on loopback (aiosmtpd). The tests prove that:

- a mail enqueued by a Django shell (with a request id bound, as in a request)
  is delivered by the worker, whose log line for the task carries that id;
- with the SMTP server down when the mail is enqueued, and started 15 seconds
  later, the mail still arrives, exactly once, after the worker's retries;
- beat, on a schedule shortened for the test (CELERY_BEAT_INTERVAL_SECONDS),
  has the worker run a periodic job that does its work: expired throttle
  counters are deleted, live ones kept.

Every wait is bounded; the processes are stopped at the end, killed if they
do not stop.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from .harness import Project, run
from .projects import free_port, production_env, rendered_project


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [
            str(message_from_bytes(bytes(envelope.content or b""))["Subject"])
            for envelope in self.messages
        ]


class SMTPServer:
    """A real SMTP server on a fixed loopback port, which can be down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def wait_for(what: str, condition: Callable[[], bool], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = "\n".join(log.read_text().splitlines()[-40:])
            pytest.fail(f"{what}: not within {timeout:.0f} s\n--- {log.name}\n{tail}")
        time.sleep(0.5)


def log_entries(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a production log (celery's own start-up banner aside)."""
    entries = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries


@contextmanager
def background(
    project: Project, name: str, command: list[str], env: dict[str, str]
) -> Iterator[Path]:
    """Run `command` in the project until the block ends; yields its log file."""
    log_path = project.path / f"{name}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=project.path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log_path
    finally:
        # The process group holds uv, celery and the worker's pool processes.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def project(template_repo: Path, services: None) -> Iterator[Project]:
    # One project per test process: xdist workers must not share a directory.
    name = f"celery-worker-{os.getpid()}"
    with rendered_project(template_repo, {"background_tasks": "celery"}, name) as project:
        yield project


@pytest.fixture(scope="module")
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker_env(project: Project, smtp: SMTPServer) -> dict[str, str]:
    env = production_env(project, EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}")
    project.gate(
        "migrate", project.uv_run("python", "manage.py", "migrate", "--no-input"), extra_env=env
    )
    return env


@pytest.fixture(scope="module")
def worker(project: Project, worker_env: dict[str, str]) -> Iterator[Path]:
    """A worker with one pool process, ready when it answers `celery inspect ping`."""
    node = f"harness-{os.getpid()}@{socket.gethostname()}"
    command = project.uv_run(
        "celery", "-A", "config", "worker", "--hostname", node, "--concurrency", "1"
    )
    with background(project, "worker", command, worker_env) as log:
        ping = project.uv_run(
            "celery", "-A", "config", "inspect", "ping", "--destination", node, "--timeout", "3"
        )
        wait_for(
            "the worker answering `celery inspect ping`",
            lambda: run(ping, cwd=project.path, env=worker_env).returncode == 0,
            timeout=90,
            log=log,
        )
        yield log


def enqueue_mail(project: Project, env: dict[str, str], subject: str, request_id: str) -> None:
    """Send a mail as the service does, from a Django shell with a request id bound."""
    slug = yaml.safe_load((project.path / ".copier-answers.yml").read_text())["project_slug"]
    code = (
        f"from {slug}.core.logging import bind_request_id\n"
        f"from {slug}.core.mail import send_mail_after_commit\n"
        f"bind_request_id({request_id!r})\n"
        f"send_mail_after_commit(subject={subject!r}, body='Hello from the worker',"
        " to=['ada@example.com'])\n"
    )
    project.gate(
        "enqueue mail",
        project.uv_run("python", "manage.py", "shell", "--no-imports", "-c", code),
        extra_env=env,
    )


def mail_task_lines(log: Path, outcome: str, request_id: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in log_entries(log)
        if entry.get("task", "").endswith(".core.tasks.send_mail_task")
        and entry.get("outcome") == outcome
        and entry.get("request_id") == request_id
    ]


def test_a_mail_is_delivered_by_the_worker(
    project: Project, worker: Path, worker_env: dict[str, str], smtp: SMTPServer
) -> None:
    enqueue_mail(project, worker_env, "Delivered by the worker", "harness-request-a")
    wait_for(
        "the mail at the SMTP server",
        lambda: "Delivered by the worker" in smtp.inbox.subjects(),
        timeout=60,
        log=worker,
    )
    # The worker sent it, and its log line carries the id of the "request".
    wait_for(
        "the task's log line",
        lambda: bool(mail_task_lines(worker, "SUCCESS", "harness-request-a")),
        timeout=30,
        log=worker,
    )
    [line] = mail_task_lines(worker, "SUCCESS", "harness-request-a")
    assert line["task_id"]
    assert line["duration_ms"] >= 0
    [envelope] = [
        e for e in smtp.inbox.messages if b"Delivered by the worker" in bytes(e.content or b"")
    ]
    assert envelope.rcpt_tos == ["ada@example.com"]


def test_a_mail_enqueued_while_smtp_is_down_arrives_exactly_once(
    project: Project, worker: Path, worker_env: dict[str, str], smtp: SMTPServer
) -> None:
    smtp.stop()
    try:
        enqueue_mail(project, worker_env, "Sent after the outage", "harness-request-b")
        # The worker meets the closed port and schedules a retry.
        wait_for(
            "a retry of the refused mail",
            lambda: bool(mail_task_lines(worker, "RETRY", "harness-request-b")),
            timeout=60,
            log=worker,
        )
        time.sleep(15)
    finally:
        smtp.start()
    wait_for(
        "the mail after the SMTP server came back",
        lambda: bool(mail_task_lines(worker, "SUCCESS", "harness-request-b")),
        timeout=180,
        log=worker,
    )
    # The task is done and acknowledged: nothing will send it again.
    assert smtp.inbox.subjects().count("Sent after the outage") == 1
    [success] = mail_task_lines(worker, "SUCCESS", "harness-request-b")
    retries = mail_task_lines(worker, "RETRY", "harness-request-b")
    assert {line["task_id"] for line in retries} == {success["task_id"]}


def test_beat_has_the_worker_run_a_periodic_job(
    project: Project, worker: Path, worker_env: dict[str, str]
) -> None:
    now = datetime.now(tz=UTC)
    with psycopg.connect(worker_env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DELETE FROM core_throttlecounter")
        conn.execute(
            "INSERT INTO core_throttlecounter (key, count, expires_at) VALUES "
            "('harness-expired', 3, %s), ('harness-live', 1, %s)",
            (now - timedelta(minutes=1), now + timedelta(hours=1)),
        )

    def keys() -> set[str]:
        with psycopg.connect(worker_env["DATABASE_URL"], autocommit=True) as conn:
            return {row[0] for row in conn.execute("SELECT key FROM core_throttlecounter")}

    env = {
        **worker_env,
        "CELERY_BEAT_INTERVAL_SECONDS": "2",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(project.path / "var" / "beat-schedule"),
    }
    with background(project, "beat", project.uv_run("celery", "-A", "config", "beat"), env) as log:
        wait_for("the expired counter deleted", lambda: "harness-expired" not in keys(), 90, log)
    assert keys() == {"harness-live"}
    ran = [
        entry
        for entry in log_entries(worker)
        if entry.get("task", "").endswith(".core.tasks.run_command")
        and entry.get("outcome") == "SUCCESS"
    ]
    assert ran, "the worker logged no run of a periodic job"
