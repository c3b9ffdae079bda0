"""The README's first command, in a fresh clone: it ends with a service that answers.

`python3 scripts/dev.py demo` renders the default service, installs it,
migrates SQLite, loads demo data and serves it. The test runs it in a copy of
the working tree (a git repository of its own, like a fresh clone), on a free
port, then uses the service as the README says: the health probe, the schema,
the docs page, the demo login and the demo orders.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .harness import clean_env, run, snapshot_template
from .projects import free_port

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-Password-2026"


def fetch(url: str, data: dict[str, Any] | None = None, token: str = "") -> tuple[int, str, bytes]:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_the_demo_command_serves_the_default_service(tmp_path: Path) -> None:
    clone = snapshot_template(tmp_path / "copier-drf")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        demo = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "demo", "--port", str(port)],
            cwd=clone,
            env=clean_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while True:
            assert demo.poll() is None, f"the demo stopped:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no answer on {base}:\n{log.read_text()[-4000:]}"
            try:
                status, _, body = fetch(f"{base}/health/live/")
                break
            except OSError:
                time.sleep(1)
        assert status == 200, body

        printed = log.read_text()
        urls = re.findall(rf"{re.escape(base)}/\S*", printed)
        assert {f"{base}/api/v1/", f"{base}/api/docs/", f"{base}/api/schema/"} <= set(urls)
        for url in urls:
            status, _, body = fetch(url)
            assert status == 200, f"{url} printed by the demo answers {status}: {body[:300]!r}"

        status, content_type, body = fetch(f"{base}/api/v1/")
        assert content_type == "application/json"
        assert json.loads(body)["order-list"] == f"{base}/api/v1/orders/"

        status, content_type, body = fetch(f"{base}/api/schema/")
        assert status == 200
        assert content_type.startswith("application/vnd.oai.openapi")
        assert b"/api/v1/orders/" in body

        status, content_type, body = fetch(f"{base}/api/docs/")
        assert status == 200
        assert content_type.startswith("text/html")
        assert b"swagger-ui" in body

        status, _, body = fetch(
            f"{base}/api/v1/auth/login/", {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        )
        assert status == 200, body
        token = json.loads(body)["access"]
        status, _, body = fetch(f"{base}/api/v1/orders/", token=token)
        assert status == 200, body
        assert json.loads(body)["results"], "the demo account has no orders"
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)

    # The README's next line, `make test`, with no server either: SQLite, the
    # database cache; what needs PostgreSQL or Redis says it is skipped.
    result = run(["make", "--no-print-directory", "test"], cwd=clone / "build" / "demo")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"\d+ passed", output), output[-2000:]
