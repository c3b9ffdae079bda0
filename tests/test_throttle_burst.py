"""The login limit holds under a concurrent burst against several server processes.

Once per throttle store, Redis (use_redis=true) and the database table
(use_redis=false), both on PostgreSQL: a rendered project is served by
gunicorn with several workers under production settings, many threads fire
login attempts at once, and no more than the rate may get through; every
other attempt must be a 429 with Retry-After in the project's error shape.

DRF's stock cache throttle over a per-process cache fails this test (each
worker counts on its own), and so does any read-modify-write counter.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from .projects import production_env, rendered_project, serve

RATE = 5
# An hourly window: the burst lasts seconds, and starts at least MARGIN seconds
# before the window ends, so it never spans two windows (a fixed window would
# then admit twice the rate, and the test would fail for the wrong reason).
WINDOW = 3600
MARGIN = 60
WORKERS = 4
THREADS = 24
ATTEMPTS_PER_THREAD = 3


@dataclass(frozen=True)
class Attempt:
    status: int
    headers: dict[str, str]
    body: bytes


def log_in(base_url: str) -> Attempt:
    request = urllib.request.Request(
        f"{base_url}/api/v1/auth/login/",
        data=json.dumps({"email": "nobody@example.com", "password": "wrong-password"}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Attempt(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Attempt(error.code, dict(error.headers), error.read())


def burst(base_url: str) -> list[Attempt]:
    """THREADS threads, released together, each sending ATTEMPTS_PER_THREAD attempts."""
    start = threading.Barrier(THREADS)

    def run(_: int) -> list[Attempt]:
        start.wait(timeout=60)
        return [log_in(base_url) for _ in range(ATTEMPTS_PER_THREAD)]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return [attempt for attempts in pool.map(run, range(THREADS)) for attempt in attempts]


def wait_until_safely_inside_a_window() -> None:
    left = WINDOW - time.time() % WINDOW
    if left < MARGIN:
        time.sleep(left + 1)


@pytest.fixture(params=[True, False], ids=["redis", "database"])
def served(request: pytest.FixtureRequest, template_repo: Path) -> Iterator[str]:
    use_redis = request.param
    answers = {"database": "postgresql", "use_redis": use_redis, "example_app": False}
    name = f"throttle-burst-{request.node.callspec.id}"
    with rendered_project(template_repo, answers, name) as project:
        env = production_env(project, DJANGO_THROTTLE_LOGIN=f"{RATE}/hour")
        with serve(project, workers=WORKERS, env=env) as base_url:
            yield base_url


@pytest.mark.usefixtures("services")
def test_login_limit_holds_under_a_concurrent_burst(served: str) -> None:
    wait_until_safely_inside_a_window()
    attempts = burst(served)

    statuses = sorted(attempt.status for attempt in attempts)
    assert len(attempts) == THREADS * ATTEMPTS_PER_THREAD
    # Exactly the rate got through (bad credentials: 401); all the others were throttled.
    assert statuses == [401] * RATE + [429] * (len(attempts) - RATE), statuses
    for attempt in attempts:
        if attempt.status != 429:
            continue
        assert 1 <= int(attempt.headers["Retry-After"]) <= WINDOW
        body = json.loads(attempt.body)
        assert "throttled" in (body.get("code"), body.get("error")), body
