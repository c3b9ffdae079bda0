"""Fixtures of the template's test suite."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from .harness import POSTGRES_URL, REDIS_URL, TIMINGS, snapshot_template


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        TIMINGS.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Where the time of the rendered projects went, gate by gate."""
    if hasattr(config, "workerinput") or not TIMINGS.exists():
        return
    totals: dict[str, list[float]] = {}
    for line in TIMINGS.read_text().splitlines():
        for gate, seconds in json.loads(line)["timings"].items():
            totals.setdefault(gate, []).append(seconds)
    if not totals:
        return
    terminalreporter.section("time per gate, over every rendered project")
    for gate, values in sorted(totals.items(), key=lambda item: -sum(item[1])):
        terminalreporter.write_line(
            f"{gate:28} total {sum(values):7.1f}s  mean {sum(values) / len(values):5.1f}s"
            f"  max {max(values):5.1f}s  ({len(values)} projects)"
        )


# Minutes a test of each module takes, roughly: the longest start first, so
# the many shorter combination tests fill the end and no worker idles.
LONG_FIRST = {
    "test_update.py": 4,
    "test_schemathesis.py": 3,
    "test_abuse_limits.py": 3,
    "test_replicas.py": 3,
    "test_bench.py": 3,
    "test_production_server.py": 2,
    "test_token_families.py": 1.5,
    "test_account_mail.py": 1.5,
    "test_operations.py": 1.5,
    "test_celery_worker.py": 2,
    "test_pgbouncer.py": 1.5,
    "test_static_files.py": 1.5,
    "test_kubernetes.py": 1,
    "test_combinations.py": 1,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -LONG_FIRST.get(item.path.name, 0))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--combos",
        choices=["all", "quick"],
        default=os.environ.get("HARNESS_COMBOS", "all"),
        help="all: the full matrix (CI); quick: the defaults and one combination per auth mode",
    )


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def services() -> None:
    """PostgreSQL and Redis must be up: the rendered suites run against them."""
    try:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
