"""Operations, proven against the real thing: Sentry's SDK and Prometheus' metrics under gunicorn.

One project with the default answers (error_tracking=sentry, PostgreSQL,
Redis), without the example app, is rendered once per test process and served
by gunicorn under production settings.

Error tracking: SENTRY_DSN points at an HTTP server this test runs on
loopback, which receives what the real SDK and its real transport send. The
service ships no route that crashes; the test adds one, in a settings module
of its own (config/settings/crash.py, production settings with the test URLs,
whose /test/boom/ raises). Answers in the 4xx send nothing; one crash sends
exactly one event, tagged with the request id the client saw in X-Request-ID,
and no byte of the client's Authorization header or cookies.

Metrics: N requests from several clients at once reach several gunicorn
workers (each worker leaves its own file in PROMETHEUS_MULTIPROC_DIR), and one
scrape, answered by whichever worker, counts exactly N for that route.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .harness import Project
from .projects import production_env, rendered_project, serve

HTTPS = {"X-Forwarded-Proto": "https"}
BEARER_SECRET = "harness-bearer-4f1c9e2a7b"
COOKIE_SECRET = "harness-cookie-8d3b6a0c5e"
CSRF_SECRET = "harness-csrf-2e7f9a1d4c"
SECRETS = (BEARER_SECRET, COOKIE_SECRET, CSRF_SECRET)
METRICS_TOKEN = "harness-metrics-token-5b8e0f3a9d"
CRASH_SETTINGS = '''"""Production settings with the test URLs, whose /test/boom/ raises."""

from .production import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
'''


def get(base_url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(base_url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class SentryServer(ThreadingHTTPServer):
    """Sentry's ingestion endpoint, as far as the SDK's transport can tell: it keeps each body."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SentryHandler)
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()

    @property
    def dsn(self) -> str:
        return f"http://harnesspublickey@127.0.0.1:{self.server_address[1]}/1"

    def items(self) -> list[tuple[dict[str, Any], bytes]]:
        with self.lock:
            bodies = list(self.bodies)
        return [item for body in bodies for item in envelope_items(body)]

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(payload) for header, payload in self.items() if header["type"] == "event"
        ]


class SentryHandler(BaseHTTPRequestHandler):
    server: SentryServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        else:
            assert not encoding, f"unexpected Content-Encoding {encoding!r}"
        with self.server.lock:
            self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def envelope_items(body: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The (item header, payload) pairs of a Sentry envelope."""
    _, _, rest = body.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        yield header, payload


@pytest.fixture(scope="module")
def project(template_repo: Path, services: None) -> Iterator[Project]:
    name = f"operations-{os.getpid()}"
    with rendered_project(template_repo, {"example_app": False}, name) as project:
        (project.path / "config" / "settings" / "crash.py").write_text(CRASH_SETTINGS)
        yield project


def wait_until(condition: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_one_crash_sends_one_event_with_its_request_id_and_no_secrets(project: Project) -> None:
    sentry = SentryServer()
    threading.Thread(target=sentry.serve_forever, daemon=True).start()
    env = production_env(
        project,
        DJANGO_SETTINGS_MODULE="config.settings.crash",
        SENTRY_DSN=sentry.dsn,
        SENTRY_ENVIRONMENT="harness",
    )
    secret_headers = {
        **HTTPS,
        "Authorization": f"Bearer {BEARER_SECRET}",
        "Cookie": f"sessionid={COOKIE_SECRET}; csrftoken={CSRF_SECRET}",
    }
    try:
        with serve(project, workers=2, env=env) as base_url:
            # Answers in the 4xx are the client's errors: nothing is sent.
            assert get(base_url, "/no/such/page/", secret_headers)[0] == 404
            assert get(base_url, "/api/v1/auth/me/", secret_headers)[0] == 401
            assert get(base_url, "/health/live/", {**HTTPS, "Host": "evil.example"})[0] == 400
            # Without METRICS_TOKEN the metrics do not exist.
            assert get(base_url, "/metrics/")[0] == 404
            time.sleep(3)
            assert sentry.events() == []

            status, headers, body = get(base_url, "/test/boom/", secret_headers)
            assert status == 500, body
            request_id = headers["X-Request-ID"]
            assert request_id
            wait_until(lambda: sentry.events())
            time.sleep(3)  # anything more would arrive by now
        events = sentry.events()
    finally:
        sentry.shutdown()
        sentry.server_close()

    assert len(events) == 1, events
    [event] = events
    assert event["tags"]["request_id"] == request_id
    assert event["environment"] == "harness"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    raw = b"\n".join(sentry.bodies)
    for secret in SECRETS:
        assert secret.encode() not in raw, f"{secret} was sent to Sentry"


def test_one_scrape_counts_every_workers_requests(project: Project, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    env = production_env(
        project, METRICS_TOKEN=METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    requests = 0
    with serve(project, workers=3, env=env) as base_url:

        def ready(_: int) -> int:
            return get(base_url, "/health/ready/", HTTPS)[0]

        def workers_reached() -> set[str]:
            return {re.sub(r"\D", "", path.name) for path in metrics_dir.glob("counter_*.db")}

        # Rounds of 30 concurrent requests until at least two workers have answered: a worker
        # still importing Django on a busy machine takes none, so one round may reach only one.
        with ThreadPoolExecutor(max_workers=6) as pool:
            while requests < 600 and (requests == 0 or len(workers_reached()) < 2):
                assert set(pool.map(ready, range(30))) == {200}
                requests += 30
        assert len(workers_reached()) >= 2, f"{requests} requests reached one worker"
        assert get(base_url, "/no/such/page-4711/", HTTPS)[0] == 404

        # Not public: no token, a wrong one or the wrong scheme is a 401.
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
            status, answer_headers, _ = get(base_url, "/metrics/", headers)
            assert status == 401
            assert answer_headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        # Over plain HTTP, as Prometheus scrapes inside the network.
        status, _, body = get(base_url, "/metrics/", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200, body
    samples = parse_samples(body.decode())
    ready = {"route": "/health/ready/", "method": "GET"}
    assert (
        samples[("http_requests_total", frozenset({**ready, "status": "200"}.items()))] == requests
    )
    assert samples[("http_request_duration_seconds_count", frozenset(ready.items()))] == requests
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert samples[("http_requests_total", frozenset(unmatched.items()))] == 1
    assert not [key for key in samples if "page-4711" in str(key)]


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus' text format as {(name, labels): value}, whatever the order of the labels."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        found = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        assert found, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        samples[(found.group(1), labels)] = float(found.group(3))
    return samples
