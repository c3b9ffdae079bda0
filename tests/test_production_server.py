"""The rendered service under its production server, on loopback.

One project with the default answers (PostgreSQL and Redis, without the example
app) is rendered, installed and collectstatic'ed once per test process, then
served by gunicorn from its own gunicorn.conf.py under production settings:
with several sync workers, with uvicorn's ASGI worker, and with Redis out of
reach. The API docs pages are opened in headless Chromium (Debian's, installed
when missing), so their Content-Security-Policy is shown to let them render.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import Project, ensure_debian_package, run
from .projects import production_env, rendered_project, serve

HTTPS = {"X-Forwarded-Proto": "https"}
# Nothing listens there: connections are refused at once.
CLOSED_REDIS = "redis://127.0.0.1:1/0"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(base_url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """GET without following redirects: (status, headers, body), errors included."""
    request = urllib.request.Request(base_url + path, headers=HTTPS if headers is None else headers)
    try:
        with OPENER.open(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def post(base_url: str, path: str, body: bytes) -> tuple[int, Any]:
    """POST `body` in one go, then read the answer: (status, parsed body)."""
    address = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request(
            "POST", path, body=body, headers={**HTTPS, "Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def log_lines(paths: set[Path]) -> list[str]:
    return [line for path in sorted(paths) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def project(template_repo: Path, services: None) -> Iterator[Project]:
    # One project per test process: xdist workers must not share a directory.
    name = f"production-server-{os.getpid()}"
    with rendered_project(template_repo, {"example_app": False}, name) as project:
        project.gate(
            "collectstatic",
            project.uv_run("python", "manage.py", "collectstatic", "--no-input", "-v", "0"),
            extra_env=production_env(project),
        )
        yield project


def test_gunicorn_workers_are_ready_on_postgresql_and_redis(project: Project) -> None:
    earlier_logs = set(project.path.glob("gunicorn-*.log"))
    with serve(project, workers=3) as base_url:
        for _ in range(9):
            status, headers, body = get(base_url, "/health/ready/")
            assert status == 200, body
            assert json.loads(body) == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"

        # Plain HTTP is redirected to HTTPS, except the probes.
        status, headers, _ = get(base_url, "/api/schema/", headers={})
        assert status == 301
        assert headers["Location"].startswith("https://")
        assert get(base_url, "/health/live/", headers={})[0] == 200

        # The admin lives at the path the rendered README says how to print.
        admin_url = project.gate(
            "admin url",
            project.uv_run(
                "python",
                "manage.py",
                "shell",
                "-v",
                "0",
                "-c",
                "from django.conf import settings; print(settings.ADMIN_URL)",
            ),
            extra_env=production_env(project),
        ).strip()
        assert re.fullmatch(r"admin-[0-9a-f]{16}/", admin_url), admin_url
        assert get(base_url, "/admin/login/")[0] == 404

        # The docs and the admin, and their assets from the manifest that
        # collectstatic wrote, served by whitenoise with far-future caching.
        for page_path in ("/api/docs/", f"/{admin_url}login/"):
            status, _, page = get(base_url, page_path)
            assert status == 200, page_path
            assets = re.findall(rb'(/static/[^"\']+\.(?:js|css))', page)
            assert assets, page[:500]
            for asset in assets:
                status, headers, _ = get(base_url, asset.decode())
                assert status == 200, asset
                assert "immutable" in headers["Cache-Control"], asset

    lines = log_lines(set(project.path.glob("gunicorn-*.log")) - earlier_logs)
    assert sum("Booting worker" in line for line in lines) >= 3
    # Every line is JSON, gunicorn's own included; requests carry their id.
    records = [json.loads(line) for line in lines]
    requests = [r for r in records if r.get("path") == "/health/ready/"]
    assert len(requests) == 9
    assert all(len(r["request_id"]) == 32 and r["status"] == 200 for r in requests)


def test_an_oversized_body_gets_its_413_rather_than_a_reset(project: Project) -> None:
    # Far past the sockets' buffers: had the worker answered before reading the
    # body, it would close with the rest unread and the client's send would fail.
    body = b'{"email": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    prefix = (
        "/api/v1" if project.answers.get("api_versioning", "url_path") == "url_path" else "/api"
    )
    with serve(project, workers=2) as base_url:
        for _ in range(3):
            status, problem = post(base_url, f"{prefix}/auth/register/", body)
            assert status == 413, problem
            assert problem["code"] == "request_too_large"
        assert get(base_url, "/health/live/")[0] == 200


def test_uvicorn_workers_serve_the_asgi_application(project: Project) -> None:
    env = production_env(project, GUNICORN_WORKER_CLASS="uvicorn_worker.UvicornWorker")
    with serve(project, workers=2, env=env, app=None) as base_url:
        status, _, body = get(base_url, "/health/live/")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, _, body = get(base_url, "/health/ready/")
        assert status == 200, body
        assert json.loads(body)["checks"] == {"database": "ok", "cache": "ok"}
        status, headers, _ = get(base_url, "/api/schema/")
        assert status == 200
        assert headers["X-Request-ID"]


def test_readiness_is_503_naming_the_cache_when_redis_is_unreachable(project: Project) -> None:
    env = production_env(project, REDIS_URL=CLOSED_REDIS)
    with serve(project, workers=2, env=env) as base_url:
        status, headers, body = get(base_url, "/health/ready/")
        assert status == 503, body
        assert headers["Content-Type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["code"] == "service_unavailable"
        assert [error["field"] for error in problem["errors"]] == ["cache"]
        assert "database" not in problem["detail"]

        # The process is alive, and the API still serves: throttles fail open.
        assert get(base_url, "/health/live/")[0] == 200
        assert get(base_url, "/api/schema/")[0] == 200


def browse(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (virtual time), from headless Chromium."""
    result = run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        cwd=profile,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_docs_pages_render_in_a_browser_under_their_policy(
    project: Project, tmp_path: Path
) -> None:
    chromium = ensure_debian_package("chromium", "chromium")
    # The browser speaks plain HTTP to loopback: no TLS proxy, no redirect.
    env = production_env(project, DJANGO_SECURE_SSL_REDIRECT="false")
    with serve(project, workers=2, env=env) as base_url:
        status, headers, _ = get(base_url, "/api/docs/")
        assert status == 200
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        # Swagger UI lists the operations it read from the schema.
        swagger = browse(chromium, f"{base_url}/api/docs/", tmp_path)
        assert 'data-path="/api/v1/auth/login/"' in swagger, swagger[-3000:]
        # ReDoc shows the schema's title and its operations.
        redoc = browse(chromium, f"{base_url}/api/redoc/", tmp_path)
        assert "/auth/login/" in redoc, redoc[-3000:]
