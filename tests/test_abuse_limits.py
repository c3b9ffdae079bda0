"""The abuse limits hold against the real server: gunicorn workers under production settings.

Once per throttle store, Redis (use_redis=true) and the database table
(use_redis=false), both on PostgreSQL, a rendered project is served by
gunicorn with several workers, and attacked over loopback:

- a concurrent burst of logins spread over the workers lets through no more
  than the rate (DRF's stock cache throttle over a per-process cache fails
  this, and so does any read-modify-write counter);
- a client that sends a new X-Forwarded-For with every attempt gets no new
  allowance, while two clients behind the trusted proxy get one each;
- failed logins against one account from many addresses shut that account's
  password logins, the right password included, until the window ends;
- deeply nested JSON and oversized forwarding headers are a 4xx in the error
  shape, never a 500, with Redis up, with Redis down, and on the database store.

Distinct clients are distinct loopback source addresses (127.0.0.2, ...); the
harness itself, at 127.0.0.1, is the service's trusted proxy (DJANGO_TRUSTED_PROXIES).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .harness import Project
from .projects import production_env, rendered_project, serve

RATE = 5
# Hourly windows: a test lasts seconds, and starts at least MARGIN seconds
# before the window ends, so it never spans two windows (a fixed window would
# then admit twice the rate, and the test would fail for the wrong reason).
WINDOW = 3600
MARGIN = 60
WORKERS = 4
THREADS = 24
ATTEMPTS_PER_THREAD = 3
# Nothing listens there: connections are refused at once.
CLOSED_REDIS = "redis://127.0.0.1:1/0"
EMAIL = "owner@example.com"
PASSWORD = "owner-Password-2026"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error_code(self) -> Any:
        body = json.loads(self.body)
        return body.get("code") if "title" in body else body.get("error")


def post(
    base_url: str,
    path: str,
    body: bytes | dict[str, Any],
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST from loopback address `source`, as the TLS proxy would forward it."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        url.hostname, url.port, timeout=60, source_address=(source, 0)
    )
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        connection.request(
            "POST",
            path,
            body=payload,
            headers={
                "Content-Type": "application/json",
                "X-Forwarded-Proto": "https",
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def log_in(base_url: str, email: str, password: str = "wrong-Password-1", **kwargs: Any) -> Answer:
    return post(base_url, "/api/v1/auth/login/", {"email": email, "password": password}, **kwargs)


def wait_until_safely_inside_a_window() -> None:
    left = WINDOW - time.time() % WINDOW
    if left < MARGIN:
        time.sleep(left + 1)


@pytest.fixture(scope="module", params=[True, False], ids=["redis", "database"])
def project(
    request: pytest.FixtureRequest, template_repo: Path, services: None
) -> Iterator[Project]:
    answers = {"database": "postgresql", "use_redis": request.param, "example_app": False}
    # One project per test process: xdist workers must not share a directory.
    name = f"abuse-limits-{'redis' if request.param else 'database'}-{os.getpid()}"
    with rendered_project(template_repo, answers, name) as project:
        env = production_env(
            project, DJANGO_SUPERUSER_EMAIL=EMAIL, DJANGO_SUPERUSER_PASSWORD=PASSWORD
        )
        for command in (("migrate", "--no-input"), ("createsuperuser", "--no-input")):
            project.gate(command[0], project.uv_run("python", "manage.py", *command), extra_env=env)
        yield project


@pytest.fixture
def limited(project: Project) -> Iterator[str]:
    """The project served with small hourly limits; plain HTTP is served (no HTTPS redirect)."""
    env = production_env(
        project,
        DJANGO_THROTTLE_LOGIN=f"{RATE}/hour",
        DJANGO_THROTTLE_LOGIN_ACCOUNT=f"{RATE}/hour",
        # Clients at other loopback addresses reach it directly, not through the
        # proxy, so they cannot say they use HTTPS.
        DJANGO_SECURE_SSL_REDIRECT="false",
    )
    wait_until_safely_inside_a_window()
    with serve(project, workers=WORKERS, env=env) as base_url:
        yield base_url


def test_login_limit_holds_under_a_concurrent_burst(limited: str) -> None:
    start = threading.Barrier(THREADS)

    def attempts(_: int) -> list[Answer]:
        start.wait(timeout=60)
        return [log_in(limited, "burst@example.com") for _ in range(ATTEMPTS_PER_THREAD)]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = [answer for batch in pool.map(attempts, range(THREADS)) for answer in batch]

    statuses = sorted(answer.status for answer in answers)
    assert len(answers) == THREADS * ATTEMPTS_PER_THREAD
    # Exactly the rate got through (bad credentials: 401); all the others were throttled.
    assert statuses == [401] * RATE + [429] * (len(answers) - RATE), statuses
    for answer in answers:
        if answer.status == 429:
            assert 1 <= int(answer.headers["Retry-After"]) <= WINDOW
            assert answer.error_code() == "throttled"


def test_a_new_forwarded_for_per_attempt_gets_no_new_allowance(limited: str) -> None:
    statuses = [
        log_in(
            limited,
            f"spoofer-{n}@example.com",
            source="127.0.0.2",
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        ).status
        for n in range(RATE + 3)
    ]
    assert statuses == [401] * RATE + [429] * 3


def test_clients_behind_the_trusted_proxy_get_an_allowance_each(limited: str) -> None:
    for client in ("198.51.100.7", "198.51.100.8"):
        statuses = [
            log_in(
                limited,
                f"client-{client}-{n}@example.com",
                headers={"X-Forwarded-For": f"203.0.113.66, {client}"},
            ).status
            for n in range(RATE + 1)
        ]
        assert statuses == [401] * RATE + [429], client


def test_failed_logins_from_many_addresses_shut_the_account(limited: str) -> None:
    for n in range(RATE):
        assert log_in(limited, EMAIL, source=f"127.0.0.{10 + n}").status == 401
    # The right password, from an address that never failed, waits for the window.
    answer = log_in(limited, EMAIL, PASSWORD, source="127.0.0.30")
    assert answer.status == 429, answer.body
    assert answer.error_code() == "throttled"
    assert 1 <= int(answer.headers["Retry-After"]) <= WINDOW


HOSTILE = {
    "deeply nested JSON": {"body": b"[" * 200_000 + b"]" * 200_000},
    "deeply nested objects": {"body": b'{"a":' * 150_000 + b"1" + b"}" * 150_000},
    "long X-Forwarded-For": {"headers": {"X-Forwarded-For": ",".join(["1.2.3.4"] * 1000)}},
    "garbage X-Forwarded-For": {"headers": {"X-Forwarded-For": "x" * 8000}},
}


def test_hostile_requests_get_a_4xx_never_a_500(project: Project) -> None:
    hostile_requests_get_a_4xx_never_a_500(project)


@pytest.mark.parametrize("project", [True], ids=["redis"], indirect=True)
def test_hostile_requests_get_a_4xx_never_a_500_with_redis_down(project: Project) -> None:
    hostile_requests_get_a_4xx_never_a_500(project, REDIS_URL=CLOSED_REDIS)


def hostile_requests_get_a_4xx_never_a_500(project: Project, **extra: str) -> None:
    env = production_env(project, DJANGO_THROTTLE_LOGIN="10000/minute", **extra)
    with serve(project, workers=2, env=env) as base_url:
        for path in ("/api/v1/auth/login/", "/api/v1/auth/register/", "/api/v1/auth/refresh/"):
            for name, hostile in HOSTILE.items():
                body = hostile.get("body", b'{"email": "a@example.com", "password": "x"}')
                answer = post(base_url, path, body, headers=hostile.get("headers"))
                assert 400 <= answer.status < 500, (path, name, answer.status, answer.body[:300])
                assert answer.headers["Content-Type"].startswith("application/"), (path, name)
                if "nested" in name:
                    assert answer.error_code() == "parse_error", (path, name, answer.body[:300])
    log = "\n".join(path.read_text() for path in project.path.glob("gunicorn-*.log"))
    assert "RecursionError" not in log
    statuses = [json.loads(line).get("status", 0) for line in log.splitlines() if line[:1] == "{"]
    assert statuses
    assert max(statuses) < 500, log[-3000:]
