"""The account lifecycle with real mail: gunicorn, production settings, a real SMTP server.

Once per auth mode, a rendered project is served by gunicorn under production
settings with EMAIL_URL pointing at an SMTP server the test runs on loopback
(aiosmtpd). Over HTTP, as a client would: register, read the verification
mail from the server, verify with the link's uid and token, log in; ask for a
password reset, read that mail, set a new password with its link; then the
old password is refused, the new one accepted, and the used link refused.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .mail import SMTPServer, smtp_server
from .projects import production_env, rendered_project, serve

AUTH_MODES = ("jwt", "jwt_cookie", "session", "token")
EMAIL = "reader@example.com"
FIRST_PASSWORD = "first-Password-2026"
NEW_PASSWORD = "second-Password-2026"
LINK = re.compile(r"^(https://app\.example\.com/\S+?)\r?$", re.M)


class Client:
    """An HTTP client that keeps cookies and speaks as the TLS proxy forwards."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json", "X-Forwarded-Proto": "https"}
        csrf = next((c.value for c in self.cookies if c.name == "csrftoken"), None)
        if csrf:
            headers |= {"X-CSRFToken": csrf, "Origin": self.base_url.replace("http:", "https:")}
        request = urllib.request.Request(
            f"{self.base_url}/api/v1/auth/{path}",
            data=json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


def link_of(message: Message) -> tuple[str, str]:
    """The uid and token of the link that stands on a line of its own in the text body."""
    text = next(
        part.get_payload(decode=True).decode()
        for part in message.walk()
        if part.get_content_type() == "text/plain"
    )
    found = LINK.search(text)
    assert found, text
    query = parse_qs(urlsplit(found.group(1)).query)
    return query["uid"][0], query["token"][0]


def wait_for_mail(server: SMTPServer, count: int) -> Message:
    deadline = time.monotonic() + 30
    while len(server.messages) < count:
        assert time.monotonic() < deadline, f"{len(server.messages)} mails, expected {count}"
        time.sleep(0.2)
    assert len(server.messages) == count
    message = message_from_bytes(server.messages[-1])
    assert message["To"] == EMAIL
    return message


@pytest.fixture(params=AUTH_MODES)
def served(
    request: pytest.FixtureRequest, template_repo: Path, services: None
) -> Iterator[tuple[str, SMTPServer]]:
    auth = request.param
    name = f"account-mail-{auth}-{os.getpid()}"
    with (
        rendered_project(
            template_repo,
            {"auth": auth, "example_app": False, "background_tasks": "none"},
            name,
        ) as project,
        smtp_server() as server,
    ):
        env = production_env(project, EMAIL_URL=f"smtp://127.0.0.1:{server.port}")
        with serve(project, workers=2, env=env) as base_url:
            yield base_url, server


def test_verification_and_password_reset_with_real_mail(served: tuple[str, SMTPServer]) -> None:
    base_url, server = served
    client = Client(base_url)
    credentials = {"email": EMAIL, "password": FIRST_PASSWORD}

    status, body = client.post("register/", {**credentials, "password_confirm": FIRST_PASSWORD})
    assert status == 201, body
    # Mandatory verification (the default): no password login yet.
    status, body = client.post("login/", credentials)
    assert status == 403, body
    assert body["code"] == "email_not_verified"

    uid, token = link_of(wait_for_mail(server, 1))
    status, body = client.post("email/verify/", {"uid": uid, "token": token})
    assert status == 200, body
    assert client.post("login/", credentials)[0] == 200

    # A reset, asked for by someone who knows only the address.
    stranger = Client(base_url)
    status, body = stranger.post("password/reset/", {"email": EMAIL})
    assert status == 202, body
    unknown = stranger.post("password/reset/", {"email": "nobody@example.com"})
    assert unknown == (status, body)
    uid, token = link_of(wait_for_mail(server, 2))
    reset = {"uid": uid, "token": token, "new_password": NEW_PASSWORD}
    status, body = stranger.post("password/reset/confirm/", reset)
    assert status == 200, body

    # The link worked once; the old password is gone, the new one works.
    status, body = stranger.post("password/reset/confirm/", reset)
    assert status == 400, body
    assert Client(base_url).post("login/", credentials)[0] == 401
    status, body = Client(base_url).post("login/", {"email": EMAIL, "password": NEW_PASSWORD})
    assert status == 200, body
    # No mail went to the unknown address.
    time.sleep(1)
    assert len(server.messages) == 2
