"""PgBouncer in transaction mode in front of PostgreSQL, under the production server.

One project (auth=jwt, the example app, PostgreSQL and Redis) is rendered and
installed once. A real PgBouncer from Debian, run by this module with its own
configuration (transaction pooling, on a free loopback port, as an unprivileged
user: it refuses to run as root), stands between the service and the harness's
PostgreSQL; gunicorn serves the service under production settings with
`DJANGO_DB_PGBOUNCER=true`. The demo data is loaded first, straight into
PostgreSQL; the API flows then go through PgBouncer: login, the orders list
walked page by page, concurrent orders for the last units of a product
(exactly the stock is sold, the rest are 409), refresh token rotation. Then
PgBouncer is stopped: the readiness probe answers 503 at once, and a login 503
`database_unavailable`; started again, the same gunicorn answers 200 on every
worker. The statement timeout is proven too: set on the database, as PgBouncer
requires, and sent by the service itself when it connects straight to
PostgreSQL; a statement that waits past it answers 503 `database_timeout`.
Straight to PostgreSQL, the service runs Django's connection pool
(`DJANGO_DB_POOL_MAX_SIZE`): concurrent orders all succeed, and the workers
never hold more connections than the pools allow.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from .harness import POSTGRES_URL, Project, ensure_debian_package
from .projects import free_port, production_env, rendered_project, serve

HTTPS = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
DEMO = {"email": "demo@example.com", "password": "demo-Password-2026"}
WORKERS = 3
# Requests enough that every worker answers some of them.
REPEAT = 3 * WORKERS
STOCK = 5
BUYERS = 12
# Seconds a probe may take to answer while PgBouncer is down.
PROBE_BOUND = 5.0
# Connections of each worker's pool when the service connects straight to PostgreSQL.
POOL_SIZE = 2
SERVICE_NAME = "harness-service"
# The statement timeout of these tests, in milliseconds.
TIMEOUT_MS = 1500
LIMITS = {
    "ACCOUNT_EMAIL_VERIFICATION": "none",
    "DJANGO_THROTTLE_ORDERS": "1000/minute",
    "DJANGO_THROTTLE_USER": "10000/hour",
    "ORDERS_MAX_PENDING": "1000",
    "ORDERS_MAX_PENDING_UNITS": "100000",
}
# PgBouncer's own settings: a stock configuration in transaction mode.
CONFIG = """\
[databases]
* = {server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
max_client_conn = 100
default_pool_size = 10
"""


class PgBouncer:
    """A PgBouncer process of this module, stopped and started at will."""

    def __init__(self, postgres_url: str) -> None:
        self.executable = ensure_debian_package("pgbouncer", "pgbouncer")
        self.port = free_port()
        server = urlsplit(postgres_url)
        self.user = server.username or "postgres"
        self.directory = Path(tempfile.mkdtemp(prefix="harness-pgbouncer-"))
        self.log = self.directory / "pgbouncer.log"
        target = f"host={server.hostname} port={server.port or 5432} user={self.user}"
        if server.password:
            target += f" password={server.password}"
        (self.directory / "pgbouncer.ini").write_text(
            CONFIG.format(server=target, port=self.port, directory=self.directory)
        )
        (self.directory / "userlist.txt").write_text(f'"{self.user}" ""\n')
        # PgBouncer refuses to run as root: then it runs as nobody.
        self.run_as = "nobody" if os.geteuid() == 0 else None
        if self.run_as:
            account = pwd.getpwnam(self.run_as)
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self, database: str) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [self.executable, str(self.directory / "pgbouncer.ini")],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.run_as,
            )
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"PgBouncer exited:\n{self.log.read_text()}")
            try:
                with psycopg.connect(self.url(database), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    pytest.fail(f"PgBouncer does not answer:\n{self.log.read_text()}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def call(
    base_url: str, path: str, body: Any = None, access: str = "", timeout: float = 30
) -> tuple[int, Any]:
    """POST `body` as JSON (GET without one); (status, parsed body), errors included."""
    headers = {**HTTPS, **({"Authorization": f"Bearer {access}"} if access else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base_url}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, content = error.code, error.read()
    return status, json.loads(content) if content else None


def database_of(project: Project) -> str:
    return urlsplit(project.env["DATABASE_URL"]).path.lstrip("/")


@pytest.fixture(scope="module")
def project(template_repo: Path, services: None) -> Iterator[Project]:
    name = f"pgbouncer-{os.getpid()}"
    answers = {"auth": "jwt", "example_app": True, "database": "postgresql", "use_redis": True}
    with rendered_project(template_repo, answers, name) as project:
        env = production_env(project)
        manage = project.uv_run("python", "manage.py")
        project.gate("migrate", [*manage, "migrate", "--no-input"], extra_env=env)
        seed = ("--users", "0", "--customers", "2", "--products", "3", "--orders", "90")
        project.gate(
            "seed_demo", [*manage, "seed_demo", "--allow-production", *seed], extra_env=env
        )
        yield project


@pytest.fixture(scope="module")
def pgbouncer(project: Project) -> Iterator[PgBouncer]:
    database = database_of(project)
    with psycopg.connect(project.env["DATABASE_URL"], autocommit=True) as conn:
        # Behind PgBouncer the statement timeout is the database's (or the role's),
        # set before PgBouncer opens its first connection to the server.
        conn.execute(f'ALTER DATABASE "{database}" SET statement_timeout = {TIMEOUT_MS}')
    bouncer = PgBouncer(project.env["DATABASE_URL"])
    bouncer.start(database)
    try:
        yield bouncer
    finally:
        bouncer.remove()


@contextmanager
def row_locked(project: Project, product: int) -> Iterator[None]:
    """Hold the product's row lock, as a long transaction elsewhere would."""
    with psycopg.connect(project.env["DATABASE_URL"]) as conn:
        conn.execute("SELECT stock FROM orders_product WHERE id = %s FOR UPDATE", [product])
        yield
        conn.rollback()


def order(base_url: str, access: str, product: int, quantity: int = 1) -> tuple[int, Any]:
    lines = [{"product": product, "quantity": quantity}]
    return call(base_url, "/api/v1/orders/", {"shipping_address": "1 Road", "items": lines}, access)


def test_pgbouncer_in_transaction_mode_then_the_pool_and_statement_timeout_without_it(
    project: Project, pgbouncer: PgBouncer
) -> None:
    """One test, so that every xdist scheduling renders the project once."""
    api_flows_and_a_restart_through_pgbouncer(project, pgbouncer)
    pool_and_statement_timeout_straight_to_postgresql(project)


def api_flows_and_a_restart_through_pgbouncer(project: Project, pgbouncer: PgBouncer) -> None:
    database = database_of(project)
    env = production_env(
        project, DATABASE_URL=pgbouncer.url(database), DJANGO_DB_PGBOUNCER="true", **LIMITS
    )
    with serve(project, workers=WORKERS, env=env) as base_url:
        status, tokens = call(base_url, "/api/v1/auth/login/", DEMO)
        assert status == 200, tokens
        access = tokens["access"]

        # The demo account's orders, page after page, each exactly once.
        with psycopg.connect(project.env["DATABASE_URL"]) as conn:
            (expected,) = conn.execute(
                "SELECT count(*) FROM orders_order o JOIN orders_customer c ON c.id = o.customer_id"
                " JOIN users_user u ON u.id = c.user_id WHERE u.email = %s",
                [DEMO["email"]],
            ).fetchone()
        assert expected > 10
        seen: list[int] = []
        page: str | None = "/api/v1/orders/?page_size=7"
        while page:
            status, body = call(base_url, page, access=access)
            assert status == 200, body
            seen += [row["id"] for row in body["results"]]
            page = body["next"] and "?".join(urlsplit(body["next"])[2:4])
        assert len(seen) == len(set(seen)) == expected

        # The last units of a product: as many orders succeed as there are units.
        status, products = call(base_url, "/api/v1/products/", access=access)
        assert status == 200, products
        product = products["results"][0]["id"]
        with psycopg.connect(project.env["DATABASE_URL"]) as conn:
            conn.execute("UPDATE orders_product SET stock = %s WHERE id = %s", [STOCK, product])
        with ThreadPoolExecutor(max_workers=BUYERS) as pool:
            answers = list(pool.map(lambda _: order(base_url, access, product), range(BUYERS)))
        statuses = sorted(status for status, _ in answers)
        assert statuses == [201] * STOCK + [409] * (BUYERS - STOCK), answers
        assert {body["code"] for status, body in answers if status == 409} == {
            "insufficient_inventory"
        }
        with psycopg.connect(project.env["DATABASE_URL"]) as conn:
            row = conn.execute("SELECT stock FROM orders_product WHERE id = %s", [product])
            assert row.fetchone() == (0,)

        # A statement that waits past the database's timeout is a 503, not a hung worker.
        other = products["results"][1]["id"]
        with row_locked(project, other):
            started = time.monotonic()
            status, body = order(base_url, access, other)
        assert (status, body["code"]) == (503, "database_timeout"), body
        assert time.monotonic() - started < TIMEOUT_MS / 1000 + PROBE_BOUND
        assert order(base_url, access, other)[0] == 201

        # Refresh rotation: the new pair works; the rotated refresh token is refused
        # (and, replayed, ends the whole login: users.tokens).
        status, rotated = call(base_url, "/api/v1/auth/refresh/", {"refresh": tokens["refresh"]})
        assert status == 200, rotated
        assert call(base_url, "/api/v1/auth/me/", access=rotated["access"])[0] == 200
        status, body = call(base_url, "/api/v1/auth/refresh/", {"refresh": tokens["refresh"]})
        assert (status, body["code"]) == (401, "token_not_valid"), body

        # PgBouncer goes away: not ready, at once, in the error shape.
        pgbouncer.stop()
        for _ in range(REPEAT):
            started = time.monotonic()
            status, body = call(base_url, "/health/ready/", timeout=PROBE_BOUND)
            assert time.monotonic() - started < PROBE_BOUND
            assert (status, body["code"]) == (503, "service_unavailable"), body
            assert [error["field"] for error in body["errors"]] == ["database"]
        # The API says so too, in the error shape, rather than a 500.
        for _ in range(WORKERS):
            status, body = call(base_url, "/api/v1/auth/login/", DEMO, timeout=PROBE_BOUND)
            assert (status, body["code"]) == (503, "database_unavailable"), body

        # Back again: the same gunicorn answers on every worker.
        pgbouncer.start(database)
        deadline = time.monotonic() + 15
        while call(base_url, "/health/ready/", timeout=PROBE_BOUND)[0] != 200:
            assert time.monotonic() < deadline, "not ready again after PgBouncer came back"
            time.sleep(0.2)
        status, tokens = call(base_url, "/api/v1/auth/login/", DEMO)
        assert status == 200, tokens
        for _ in range(REPEAT):
            status, body = call(base_url, "/api/v1/auth/me/", access=tokens["access"])
            assert status == 200, body
            assert body["email"] == DEMO["email"]
        status, body = call(base_url, "/api/v1/orders/?page_size=7", access=tokens["access"])
        assert status == 200, body
        assert len(body["results"]) == 7


def connections_of_the_service() -> int:
    """Backends PostgreSQL runs for the service (its DATABASE_URL names it, below)."""
    with psycopg.connect(f"{POSTGRES_URL}/postgres") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [SERVICE_NAME]
        ).fetchone()
    return int(count)


def pool_and_statement_timeout_straight_to_postgresql(project: Project) -> None:
    """Without PgBouncer: the service's own pool, and the statement timeout it sends."""
    database = database_of(project)
    with psycopg.connect(project.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" RESET statement_timeout')
        products = [row[0] for row in conn.execute("SELECT id FROM orders_product ORDER BY id")]
        conn.execute("UPDATE orders_product SET stock = 100 WHERE id = ANY(%s)", [products])
    env = production_env(
        project,
        # PgBouncer's own connections to the database are not the service's.
        DATABASE_URL=f"{project.env['DATABASE_URL']}?application_name={SERVICE_NAME}",
        DJANGO_DB_STATEMENT_TIMEOUT_MS=str(TIMEOUT_MS),
        # Each worker's pool keeps all its connections open: their count shows the pool.
        DJANGO_DB_POOL_MIN_SIZE=str(POOL_SIZE),
        DJANGO_DB_POOL_MAX_SIZE=str(POOL_SIZE),
        **LIMITS,
    )
    with serve(project, workers=WORKERS, env=env) as base_url:
        status, tokens = call(base_url, "/api/v1/auth/login/", DEMO)
        assert status == 200, tokens
        access = tokens["access"]

        # Many more concurrent orders than connections: each waits its turn for one.
        with ThreadPoolExecutor(max_workers=BUYERS) as pool:
            answers = list(
                pool.map(lambda n: order(base_url, access, products[n % 3]), range(3 * BUYERS))
            )
        assert [status for status, _ in answers] == [201] * (3 * BUYERS), answers
        # A sync worker uses one connection at a time: more than one per worker
        # are the pools' (persistent connections would be one per worker).
        deadline = time.monotonic() + 15
        while connections_of_the_service() != WORKERS * POOL_SIZE:
            assert time.monotonic() < deadline, connections_of_the_service()
            assert call(base_url, "/api/v1/products/", access=access)[0] == 200
            time.sleep(0.1)

        product = products[0]
        with row_locked(project, product):
            started = time.monotonic()
            status, body = order(base_url, access, product)
        assert (status, body["code"]) == (503, "database_timeout"), body
        assert body["request_id"]
        assert time.monotonic() - started < TIMEOUT_MS / 1000 + PROBE_BOUND
        # The pooled connection the timeout hit serves the next requests.
        for _ in range(REPEAT):
            assert order(base_url, access, product)[0] == 201
        assert connections_of_the_service() == WORKERS * POOL_SIZE
