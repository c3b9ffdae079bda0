"""Two replicas behind nginx share everything, and a rolling restart loses no request.

A rendered project (auth=jwt, PostgreSQL and Redis) is served by two gunicorn
masters with production settings, on one database and one Redis key prefix,
behind Debian's nginx running the project's own deploy/nginx/<slug>.conf
(its listen address, upstream addresses and TLS lines adapted to loopback:
nginx plays the TLS proxy, so it sends X-Forwarded-Proto: https, and it is the
replicas' one trusted proxy, 127.0.0.1). Clients are distinct loopback source
addresses (127.0.0.5, 127.0.3.x ...), so the throttles count each one apart.

- a burst of logins from one client, split by nginx over both replicas, lets
  through no more than DJANGO_THROTTLE_LOGIN;
- a refresh token blacklisted (logout) on one replica is refused by the other;
  a session login (auth=session, a second project) made on one replica works on
  the other;
- under a bounded load of GETs and logins from four concurrent clients, each
  replica in turn is replaced as the shipped config says (marked `down` in the
  upstream and nginx reloaded, SIGTERM, its successor started and ready, back
  in the upstream), and every request gets its normal answer. Without the
  draining step a login (a POST, which nginx never sends twice) now and then
  gets 502: a stopping gunicorn's workers hold the listening socket until
  they notice SIGTERM, and connections queued meanwhile are reset.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .harness import Project, ensure_debian_package
from .projects import free_port, production_env, rendered_project

PASSWORD = "correct-Horse-battery-9"
LOGIN_RATE = 10  # per minute, the rendered default of DJANGO_THROTTLE_LOGIN
HTTPS = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a new connection from `source`; the body parsed as JSON when there is one."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0)
    )
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, path, body=data, headers={**HTTPS, **(headers or {})})
        response = connection.getresponse()
        content = response.read()
        # Set-Cookie may come more than once: keep them all, joined.
        found: dict[str, str] = {}
        for name, value in response.getheaders():
            found[name.lower()] = (
                f"{found[name.lower()]}\n{value}" if name.lower() in found else value
            )
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = content.decode(errors="replace")
        return Answer(response.status, found, parsed)
    finally:
        connection.close()


@dataclass
class Replica:
    """One gunicorn master of the project on a loopback port, started and stopped at will."""

    project: Project
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.project.path / f"replica-{self.port}.log", "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(self.project.path / ".venv" / "bin" / "gunicorn"),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
            ],
            cwd=self.project.path,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                if call(self.port, "GET", "/health/ready/").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica on {self.port} not ready\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, as an orchestrator sends it; gunicorn finishes the requests in flight."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def log(self) -> str:
        return (self.project.path / f"replica-{self.port}.log").read_text()[-4000:]


def nginx_config(shipped: str, port: int, replicas: list[Replica], workdir: Path) -> str:
    """The project's nginx example on loopback: plain HTTP in, https announced to the replicas."""
    text, count = re.subn(r"server \{\n    listen 80;.*?\n\}\n\n", "", shipped, flags=re.S)
    assert count == 1, "the example's port 80 server block changed"
    upstreams = iter(replicas)
    text, count = re.subn(
        r"server 10\.0\.0\.\d+:8000", lambda _: f"server 127.0.0.1:{next(upstreams).port}", text
    )
    assert count == len(replicas), "the example's upstream servers changed"
    for pattern, replacement in (
        (r"    listen 443 ssl;\n", f"    listen 127.0.0.1:{port};\n"),
        (r"    listen \[::\]:443 ssl;\n", ""),
        (r"    ssl_certificate .*\n", ""),
        (r"    ssl_certificate_key .*\n", ""),
        (r"\$scheme", "https"),
        # Which replica answered, for the test only.
        (r"(    location / \{\n)", r"\1        add_header X-Upstream $upstream_addr always;\n"),
    ):
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"the example changed: {pattern}"
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    indented = "\n".join(f"    {line}" if line else "" for line in text.splitlines())
    return (
        f"daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\n"
        "events {\n    worker_connections 512;\n}\n"
        f"http {{\n    access_log {workdir / 'access.log'};\n{temp}\n{indented}\n}}\n"
    )


@dataclass
class Cluster:
    project: Project
    replicas: list[Replica]
    port: int  # nginx's
    proxy: subprocess.Popen[bytes]
    config: Path
    base_config: str

    def route(self, replica: Replica, *, drained: bool) -> None:
        """Take `replica` out of nginx's upstream (`down`) or put it back, and reload nginx."""
        text = self.base_config
        if drained:
            text, count = re.subn(
                rf"(server 127\.0\.0\.1:{replica.port}\b[^;]*);", r"\1 down;", text
            )
            assert count == 1
        self.config.write_text(text)
        self.proxy.send_signal(signal.SIGHUP)
        # The new workers serve new connections once the old ones are told to finish.
        time.sleep(1)


def start_cluster(project: Project, nginx: str, **extra: str) -> Iterator[Cluster]:
    # A sync worker notices SIGTERM within GUNICORN_TIMEOUT / 2: 5 s here instead of 15.
    env = production_env(
        project,
        ACCOUNT_EMAIL_VERIFICATION="none",
        DJANGO_LOG_LEVEL="WARNING",
        GUNICORN_LOG_LEVEL="warning",
        GUNICORN_TIMEOUT="10",
        **extra,
    )
    project.gate(
        "migrate", project.uv_run("python", "manage.py", "migrate", "--no-input"), extra_env=env
    )
    replicas = [Replica(project, env), Replica(project, env)]
    workdir = project.path / "nginx"
    workdir.mkdir()
    port = free_port()
    (shipped,) = (project.path / "deploy" / "nginx").glob("*.conf")
    config = workdir / "nginx.conf"
    config.write_text(nginx_config(shipped.read_text(), port, replicas, workdir))
    proxy = None
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        proxy = subprocess.Popen(
            [nginx, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if call(port, "GET", "/health/live/").status == 200:
                    break
            except OSError:
                pass
            assert proxy.poll() is None and time.monotonic() < deadline, (
                workdir / "error.log"
            ).read_text()
            time.sleep(0.1)
        yield Cluster(project, replicas, port, proxy, config, config.read_text())
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait(timeout=10)
        for replica in replicas:
            replica.stop()


@pytest.fixture(scope="module")
def nginx() -> str:
    return ensure_debian_package("nginx", "nginx")


@pytest.fixture(scope="module")
def jwt_cluster(template_repo: Path, services: None, nginx: str) -> Iterator[Cluster]:
    answers = {"auth": "jwt", "example_app": False}
    with rendered_project(template_repo, answers, f"replicas-jwt-{os.getpid()}") as project:
        yield from start_cluster(project, nginx)


@pytest.fixture(scope="module")
def session_cluster(template_repo: Path, services: None, nginx: str) -> Iterator[Cluster]:
    answers = {"auth": "session", "example_app": False, "background_tasks": "none"}
    with rendered_project(template_repo, answers, f"replicas-session-{os.getpid()}") as project:
        yield from start_cluster(project, nginx)


def register(port: int, email: str) -> None:
    account = {"email": email, "password": PASSWORD, "password_confirm": PASSWORD}
    answer = call(port, "POST", "/api/v1/auth/register/", account)
    assert answer.status == 201, answer


def login(port: int, email: str, source: str = "127.0.0.1") -> Answer:
    return call(
        port, "POST", "/api/v1/auth/login/", {"email": email, "password": PASSWORD}, source=source
    )


def test_login_limit_holds_across_replicas(jwt_cluster: Cluster) -> None:
    register(jwt_cluster.replicas[0].port, "burst@example.com")
    attempts = 3 * LOGIN_RATE
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(
                lambda _: login(jwt_cluster.port, "burst@example.com", source="127.0.0.5"),
                range(attempts),
            )
        )
    statuses = [answer.status for answer in answers]
    assert set(statuses) == {200, 429}, statuses
    assert 1 <= statuses.count(200) <= LOGIN_RATE, statuses
    # nginx split the burst over both replicas.
    served_by = {answer.headers["x-upstream"] for answer in answers}
    assert served_by == {f"127.0.0.1:{replica.port}" for replica in jwt_cluster.replicas}


def test_a_logout_on_one_replica_holds_on_the_other(jwt_cluster: Cluster) -> None:
    first, second = (replica.port for replica in jwt_cluster.replicas)
    register(first, "logout@example.com")
    tokens = login(first, "logout@example.com")
    assert tokens.status == 200, tokens
    bearer = {"Authorization": f"Bearer {tokens.body['access']}"}
    assert call(second, "GET", "/api/v1/auth/me/", headers=bearer).status == 200
    refresh = {"refresh": tokens.body["refresh"]}
    assert call(first, "POST", "/api/v1/auth/logout/", refresh).status == 204
    refused = call(second, "POST", "/api/v1/auth/refresh/", refresh)
    assert (refused.status, refused.body["code"]) == (401, "token_not_valid"), refused


def test_a_session_made_on_one_replica_works_on_the_other(session_cluster: Cluster) -> None:
    first, second = (replica.port for replica in session_cluster.replicas)
    register(first, "session@example.com")
    answer = login(first, "session@example.com")
    assert answer.status == 200, answer
    cookies = "; ".join(
        cookie.split(";", 1)[0] for cookie in answer.headers["set-cookie"].split("\n")
    )
    assert "sessionid=" in cookies, answer.headers
    me = call(second, "GET", "/api/v1/auth/me/", headers={"Cookie": cookies})
    assert (me.status, me.body["email"]) == (200, "session@example.com"), me
    assert call(second, "GET", "/api/v1/auth/me/").status in (401, 403)


def test_rolling_restart_loses_no_request(jwt_cluster: Cluster) -> None:
    """Four clients send GETs and logins while each replica in turn is replaced."""
    port = jwt_cluster.port
    register(jwt_cluster.replicas[0].port, "load@example.com")
    tokens = login(jwt_cluster.replicas[0].port, "load@example.com")
    bearer = {"Authorization": f"Bearer {tokens.body['access']}"}
    restarted = threading.Event()
    results: list[tuple[str, int]] = []
    errors: list[str] = []
    limit = 600  # the load is bounded whatever happens

    def client(number: int) -> None:
        sent = 0
        while not restarted.is_set() and len(results) < limit:
            sent += 1
            kind = ("ready", "me", "login")[sent % 3]
            try:
                if kind == "ready":
                    status = call(port, "GET", "/health/ready/").status
                elif kind == "me":
                    status = call(port, "GET", "/api/v1/auth/me/", headers=bearer).status
                else:
                    # Each login from an address of its own: the login limit is per client.
                    source = f"127.0.3.{(number * 60 + sent // 3) % 250 + 1}"
                    status = login(port, "load@example.com", source=source).status
            except OSError as exc:
                errors.append(f"{kind}: {exc!r}")
                continue
            results.append((kind, status))
            time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        for index, replica in enumerate(jwt_cluster.replicas):
            # The shipped config's procedure: drain, stop, start, ready, route again.
            jwt_cluster.route(replica, drained=True)
            replica.stop()
            successor = Replica(jwt_cluster.project, replica.env, port=replica.port)
            successor.start()
            successor.wait_ready()
            jwt_cluster.replicas[index] = successor
            jwt_cluster.route(successor, drained=False)
            time.sleep(1)
    finally:
        restarted.set()
        for thread in threads:
            thread.join(timeout=60)
    failed = [(kind, status) for kind, status in results if status != 200]
    assert not errors and not failed, (errors, failed, len(results))
    kinds = [kind for kind, _ in results]
    assert min(kinds.count(kind) for kind in ("ready", "me", "login")) >= 30, len(results)
