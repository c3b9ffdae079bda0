"""Schemathesis against the OpenAPI schema of rendered projects, served as in production.

For the default combination and one per error format: render, serve with
gunicorn under production settings on PostgreSQL (or SQLite) and Redis, load a
little demo data, log in as the demo account the way that combination's
clients do, and let schemathesis generate requests for every operation of
/api/schema/. No response may be a 5xx, and every response must match what
the schema documents: its status, its content type and its body. Then every
operation that takes a body gets the bodies generation does not reach: JSON
nested a hundred thousand levels deep, and a body over the size limit; each
must be refused with a 4xx in the error shape.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

from .harness import run
from .projects import production_env, rendered_project, serve

COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "envelope": {
        "auth": "session",
        "error_format": "envelope",
        "pagination": "page_number",
        "api_versioning": "accept_header",
    },
}

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Test cases per operation: enough to reach the error paths, and about a
# minute per run on two cores.
MAX_EXAMPLES = 25
SEED = 20260501
DEMO = {"email": "demo@example.com", "password": "demo-Password-2026"}
# Logging out would end the run's own session or token.
EXCLUDED_PATHS = r"/auth/logout/$"
# High enough that the run never meets a 429; the throttles have their own tests.
UNTHROTTLED = {
    "DJANGO_THROTTLE_ANON": "1000000/hour",
    "DJANGO_THROTTLE_USER": "1000000/hour",
    "DJANGO_THROTTLE_LOGIN": "1000000/hour",
    "DJANGO_THROTTLE_LOGIN_ACCOUNT": "1000000/hour",
    "DJANGO_THROTTLE_ORDERS": "1000000/hour",
}
HOSTILE_BODIES = {
    "nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    # Over the default DJANGO_MAX_BODY_BYTES (1 MiB).
    "oversized": b'{"a": "' + b"x" * (1024 * 1024) + b'"}',
}
FORWARDED = {"X-Forwarded-Proto": "https"}


def api_prefix(answers: dict[str, Any]) -> str:
    return "/api/v1" if answers["api_versioning"] == "url_path" else "/api"


def log_in(base_url: str, answers: dict[str, Any]) -> dict[str, str]:
    """Log in as the demo account; return the headers that authenticate its requests."""
    request = urllib.request.Request(
        f"{base_url}{api_prefix(answers)}/auth/login/",
        data=json.dumps(DEMO).encode(),
        headers={**FORWARDED, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read() or b"{}")
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
    auth = answers["auth"]
    if auth == "jwt":
        return {"Authorization": f"Bearer {body['access']}"}
    if auth == "token":
        return {"Authorization": f"Token {body['token']}"}
    # Cookie modes: send the cookies back, and the CSRF token with an Origin of
    # this host, as a browser on the service's own site does over HTTPS.
    return {
        "Cookie": "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items()),
        "X-CSRFToken": cookies["csrftoken"].value,
        "Origin": base_url.replace("http://", "https://"),
    }


@pytest.mark.usefixtures("services")
@pytest.mark.parametrize("name", COMBINATIONS)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    name: str, template_repo: Path
) -> None:
    with rendered_project(template_repo, COMBINATIONS[name], f"schemathesis-{name}") as project:
        env = production_env(project, **UNTHROTTLED)
        with serve(project, env=env, workers=2) as base_url:
            project.gate(
                "seed_demo",
                project.uv_run(
                    "python",
                    "manage.py",
                    "seed_demo",
                    "--customers",
                    "5",
                    "--products",
                    "20",
                    "--orders",
                    "60",
                    "--allow-production",
                ),
                extra_env=env,
            )
            headers = {**FORWARDED, **log_in(base_url, project.answers)}
            command = [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{base_url}/api/schema/",
                "--url",
                base_url,
                "--checks",
                ",".join(CHECKS),
                "--exclude-path-regex",
                EXCLUDED_PATHS,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                # One worker: with several threads, Hypothesis's ast.parse trips
                # CPython 3.11's "AST constructor recursion depth mismatch".
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--generation-database",
                "none",
                "--no-color",
            ]
            for header, value in headers.items():
                command += ["--header", f"{header}: {value}"]
            result = run(command, cwd=project.path, env=project.env, timeout=600)
            output = result.stdout + result.stderr
            (project.path / "schemathesis.txt").write_text(output)
            if result.returncode != 0:
                failures = output.split("=== FAILURES ===")[-1].split("=== WARNINGS ===")[0]
                raise project.fail("schemathesis", "schemathesis run (schemathesis.txt)", failures)
            assert_hostile_bodies_are_refused(base_url, headers)


def assert_hostile_bodies_are_refused(base_url: str, headers: dict[str, str]) -> None:
    request = urllib.request.Request(f"{base_url}/api/schema/?format=json", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        schema = json.loads(response.read())
    operations = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation and "{" not in path and not path.endswith("/logout/")
    ]
    assert operations
    answers = {}
    for method, path in operations:
        for name, body in HOSTILE_BODIES.items():
            request = urllib.request.Request(
                base_url + path,
                data=body,
                method=method,
                headers={**headers, "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, content_type = response.status, response.headers["Content-Type"]
            except urllib.error.HTTPError as error:
                status, content_type = error.code, error.headers["Content-Type"]
            answers[f"{method} {path} ({name})"] = (status, content_type)
    not_refused = {
        key: answer
        for key, answer in answers.items()
        if not (400 <= answer[0] < 500 and answer[1].startswith("application/"))
    }
    assert not not_refused, not_refused
