"""A reused refresh token ends its whole login, under the production server.

One project (auth=jwt on PostgreSQL and Redis, without the example app) is
served by gunicorn with several workers under production settings. Over HTTP,
a client registers, logs in and refreshes once; then the first refresh token is
replayed, as a thief holding a copy would. The replay is refused, and so is
everything the legitimate refresh produced, the new refresh token and the new
access token, whichever worker answers; another login of the same user goes on.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .projects import production_env, rendered_project, serve

HTTPS = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
EMAIL = "ada@example.com"
PASSWORD = "correct-Horse-battery-9"
# Enough requests that every one of the workers answers some of them.
WORKERS = 3
REPEAT = 3 * WORKERS


def call(base_url: str, path: str, body: Any = None, access: str = "") -> tuple[int, Any]:
    """POST `body` as JSON (GET without one); (status, parsed body), errors included."""
    headers = {**HTTPS, **({"Authorization": f"Bearer {access}"} if access else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url}/api/v1/{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, content = error.code, error.read()
    return status, json.loads(content) if content else None


@pytest.fixture(scope="module")
def served(template_repo: Path, services: None) -> Iterator[str]:
    name = f"token-families-{os.getpid()}"
    with rendered_project(template_repo, {"auth": "jwt", "example_app": False}, name) as project:
        # Log in without a mail round trip, whatever the verification default.
        env = production_env(project, ACCOUNT_EMAIL_VERIFICATION="none")
        with serve(project, workers=WORKERS, env=env) as base_url:
            yield base_url


def test_reuse_of_a_rotated_refresh_token_ends_the_login(served: str) -> None:
    account = {"email": EMAIL, "password": PASSWORD, "password_confirm": PASSWORD}
    assert call(served, "auth/register/", account)[0] == 201
    credentials = {"email": EMAIL, "password": PASSWORD}
    status, stolen = call(served, "auth/login/", credentials)
    assert status == 200, stolen
    status, other_login = call(served, "auth/login/", credentials)
    assert status == 200, other_login

    status, rotated = call(served, "auth/refresh/", {"refresh": stolen["refresh"]})
    assert status == 200, rotated
    for _ in range(REPEAT):
        assert call(served, "auth/me/", access=rotated["access"])[0] == 200

    # The thief replays the refresh token that the client already rotated.
    status, problem = call(served, "auth/refresh/", {"refresh": stolen["refresh"]})
    assert (status, problem["code"]) == (401, "token_not_valid"), problem

    # The whole login is over: the client's new pair is refused by every worker.
    status, problem = call(served, "auth/refresh/", {"refresh": rotated["refresh"]})
    assert (status, problem["code"]) == (401, "token_not_valid"), problem
    for _ in range(REPEAT):
        status, problem = call(served, "auth/me/", access=rotated["access"])
        assert (status, problem["code"]) == (401, "token_not_valid"), problem
    # The user's other login goes on.
    assert call(served, "auth/me/", access=other_login["access"])[0] == 200
    assert call(served, "auth/refresh/", {"refresh": other_login["refresh"]})[0] == 200
