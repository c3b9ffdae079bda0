"""`make bench`: measure the rendered service's orders list, side by side, in one run.

1. Render the default project (and a limit/offset twin for the deep-page
   comparison), install it, run its test suite: the template's own cost.
2. Load it with `seed_demo` into a fresh PostgreSQL database.
3. Serve it with gunicorn and production settings on loopback, with views
   added at bench time (the template ships none of them): its peers, plain
   DRF and django-ninja (bench/peers.py), the seed's naive N+1 loop and
   `.values()` + orjson ceilings (bench/reference.py), flat and nested.
4. Check that every view answers the rendered list's rows; then drive each
   with wrk at a fixed concurrency, for page sizes 25 and 100, in interleaved
   rounds; count queries per request with Django's own counters; time first
   versus deep pages (90% into the table) for cursor and offset pagination;
   place orders from 8 concurrent clients against the service and a
   hand-written ceiling; read the workers' memory; time cold starts.
5. Write bench/results/results.md, bench/results/results.png and the figures
   section of docs/benchmarks.md.

Figures are ratios from one run on a shared machine: compare the rows of one
table, not tables of different runs. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import (  # noqa: E402
    PRODUCTION_SECRETS,
    REDIS_URL,
    Project,
    clean_env,
    ensure_debian_package,
    render,
)
from tests.projects import free_port, postgres_database, redis_prefix, serve  # noqa: E402

WORK = ROOT / "build" / "bench"
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
PAGE_SIZES = (25, 100)
# Each view's path for a page of {size} rows; the rendered list first (the others are checked
# against it), then its peers (bench/peers.py), then the references (bench/reference.py).
PATHS = {
    "rendered": "/api/v1/orders/?page_size={size}",
    "plain-drf": "/bench/plain/?page_size={size}",
    "ninja": "/bench/ninja/orders/?page_size={size}",
    "ninja-offset": "/bench/ninja/orders-offset/?limit={size}",
    "naive": "/bench/naive/?page_size={size}",
    "ceiling": "/bench/ceiling/?page_size={size}",
    # Orders with their lines: the detail's serializer as a list, its peers, its ceiling.
    "rendered-nested": "/bench/nested/?page_size={size}",
    "plain-drf-nested": "/bench/plain-nested/?page_size={size}",
    "ninja-nested": "/bench/ninja/orders-nested/?page_size={size}",
    "ceiling-nested": "/bench/nested-ceiling/?page_size={size}",
}
ENDPOINTS = tuple(PATHS)
# The order each round runs them in (every other round backwards): each view next to the
# views its ratios compare it with, so that the machine changes little between the two.
ROUND_ORDER = (
    "plain-drf",
    "ninja",
    "rendered",
    "ceiling",
    "naive",
    "ninja-offset",
    "plain-drf-nested",
    "ninja-nested",
    "rendered-nested",
    "ceiling-nested",
)
assert sorted(ROUND_ORDER) == sorted(ENDPOINTS), "every view is measured once per round"
PEERS = ("plain-drf", "ninja", "ninja-offset")
NESTED_PEERS = ("plain-drf-nested", "ninja-nested")
# The django-ninja release the peers run on (checked against PyPI when the bench was written).
NINJA = "django-ninja==1.7.1"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Load:
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)

    def add(self, rps: float, p50: float, p99: float) -> None:
        """One round's figures."""
        self.rps.append(rps)
        self.p50_ms.append(p50)
        self.p99_ms.append(p99)

    def mean(self, values: list[float]) -> float:
        """The median of the rounds: one disturbed round does not move it."""
        return statistics.median(values) if values else float("nan")

    def per(self, base: Load) -> str:
        """The median of each round's requests per second over `base`'s in the same round.

        Each round measures the two a few seconds apart; the machine's load
        moves more between rounds than that (the ceiling's page 25 has
        answered 525, 767 and 711 requests per second in the three rounds of
        one run), and the ratio of two medians taken from different rounds
        carries that movement. "n/a" when no round completed a request of `base`.
        """
        ratios = [mine / theirs for mine, theirs in zip(self.rps, base.rps, strict=True) if theirs]
        return f"{statistics.median(ratios):.2f}" if ratios else "n/a"


def to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    token: str | None,
    *,
    duration: int,
    connections: int,
    threads: int = 1,
    script: Path | None = None,
) -> tuple[float, float, float]:
    """One wrk run: requests per second, p50 and p99 in ms. A Lua `script` builds its own
    requests (then `token` is None); any answer other than 2xx stops the bench."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}", "-H", "X-Forwarded-Proto: https"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk got errors from {url}:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    return rps, to_ms(*p50.groups()), to_ms(*p99.groups())  # type: ignore[union-attr]


def timed(title: str, function, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    function(*args, **kwargs)
    elapsed = time.perf_counter() - started
    log(f"{title}: {elapsed:.1f}s")
    return elapsed


def ensure_wrk() -> None:
    if not shutil.which("wrk"):
        log("installing wrk from Debian")
        ensure_debian_package("wrk", "wrk")


def render_project(work: Path, name: str, answers: dict[str, object]) -> tuple[Project, float]:
    destination = work / name
    shutil.rmtree(destination, ignore_errors=True)
    destination.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = render(ROOT, destination, {"project_name": "Bench Service", **answers})
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"copier copy failed:\n{result.stderr}")
    log(f"render {name}: {elapsed:.1f}s")
    return Project(name=name, path=destination, answers=dict(answers)), elapsed


def django_script(project: Project, env: dict[str, str], code: str) -> dict[str, Any]:
    """Run `code` in the project; it prints one line "@@json {...}" with its answer."""
    output = project.gate("bench script", project.uv_run("python", "-c", code), extra_env=env)
    line = next(line for line in output.splitlines() if line.startswith("@@json "))
    return json.loads(line.removeprefix("@@json "))  # type: ignore[no-any-return]


SETUP = """
import django, json
django.setup()
from django.contrib.auth import get_user_model
from {slug}.users.serializers import TokenObtainPairSerializer
user, _ = get_user_model().objects.get_or_create(email="bench@example.com")
user.is_staff = True
user.save()
# A login of its own (a token family), as the service's login starts one.
access = TokenObtainPairSerializer.get_token(user).access_token
print("@@json " + json.dumps({"token": str(access)}))
"""

PROBE = """
import django, json
django.setup()
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from {slug}.core import pagination
from {slug}.orders.models import Order

token = {token!r}
paths = {paths!r}
client = Client(HTTP_AUTHORIZATION="Bearer " + token)
out = {{"queries": {{}}, "same_rows": {{}}}}
for size in (25, 100):
    pages = {{}}
    for name, url in paths.items():
        # Counted as under load: after a first request (the login's user is cached then).
        client.get(url.format(size=size), secure=True)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url.format(size=size), secure=True)
        assert response.status_code == 200, (url, response.status_code, response.content[:500])
        out["queries"][f"{{name}}:{{size}}"] = len(ctx.captured_queries)
        body = response.json()
        pages[name] = body["items"] if "items" in body else body["results"]
    # Every view answers the rendered list's rows, in its order, before anything is timed
    # (the nested ones the same orders' lines too).
    ids = [row["id"] for row in pages["rendered"]]
    assert len(ids) == min(size, Order.objects.count()), (size, len(ids))
    lines = [[item["id"] for item in row["items"]] for row in pages["rendered-nested"]]
    assert sum(map(len, lines)) > 0, size
    for name, rows in pages.items():
        assert [row["id"] for row in rows] == ids, (name, size)
        emails = [row["customer_email"] for row in rows]
        assert emails == [row["customer_email"] for row in pages["rendered"]], (name, size)
        if "nested" in name:
            assert [[item["id"] for item in row["items"]] for row in rows] == lines, name
    # Plain DRF renders with DRF's own fields: its rows are the rendered ones, field by field.
    assert pages["plain-drf"] == pages["rendered"], size
    assert pages["plain-drf-nested"] == pages["rendered-nested"], size
    out["same_rows"][str(size)] = len(ids)
count = Order.objects.count()
deep = Order.objects.order_by("-created_at", "-id")[int(count * 0.9)]
if hasattr(pagination, "SIGNING_SALT"):
    first = client.get("/api/v1/orders/", {{"page_size": 25}}, secure=True).json()
    token_value = first["next"].split("cursor=")[1].split("&")[0]
    from urllib.parse import unquote
    salt = pagination.SIGNING_SALT
    offset, reverse, position, ordering = signing.loads(unquote(token_value), salt=salt)
    cursor = signing.dumps([0, 0, str(deep.created_at), ordering], salt=salt, compress=True)
    out["deep"] = "/api/v1/orders/?page_size=25&cursor=" + cursor
else:
    out["deep"] = f"/api/v1/orders/?limit=25&offset={{int(count * 0.9)}}"
out["orders"] = count
print("@@json " + json.dumps(out))
"""


WRITERS = 8
WRITE_PATHS = {"rendered": "/api/v1/orders/", "ceiling": "/bench/create-ceiling/"}
# Each wrk thread is one client with one connection: its own user (a token of
# its own login) and its own body. The request is built once per thread.
CREATE_SCRIPT = """
local clients = {clients}
local next_client = 1

function setup(thread)
   thread:set("client", next_client)
   next_client = next_client + 1
end

function init(args)
   local mine = clients[client]
   local headers = {{}}
   headers["Content-Type"] = "application/json"
   headers["Authorization"] = "Bearer " .. mine.token
   headers["X-Forwarded-Proto"] = "https"
   req = wrk.format("POST", nil, headers, mine.body)
end

function request()
   return req
end
"""


def create_script(path: Path, writers: list[dict[str, Any]], products: list[int]) -> Path:
    """A wrk script in which writer i orders products[i] (the same one for every writer
    when `products` holds one)."""
    clients = []
    for index, writer in enumerate(writers):
        body = {
            "shipping_address": "1 Bench Street",
            "items": [{"product": products[index % len(products)], "quantity": 1}],
            # The hand-written ceiling authenticates nobody: it is told the customer.
            "customer": writer["customer"],
        }
        clients.append(
            f"{{token = {json.dumps(writer['token'])}, body = {json.dumps(json.dumps(body))}}}"
        )
    path.write_text(CREATE_SCRIPT.format(clients="{\n   " + ",\n   ".join(clients) + "\n}"))
    return path


WRITE_SETUP = """
import django, json
django.setup()
from django.contrib.auth import get_user_model
from {slug}.orders.models import Customer, Product
from {slug}.users.serializers import TokenObtainPairSerializer
writers = []
for index in range({writers}):
    user, _ = get_user_model().objects.get_or_create(email=f"writer{{index}}@example.com")
    customer, _ = Customer.objects.get_or_create(user=user)
    token = str(TokenObtainPairSerializer.get_token(user).access_token)
    writers.append({{"token": token, "customer": customer.pk}})
products = [
    Product.objects.update_or_create(
        sku=f"BENCH-{{index}}", defaults={{"name": f"Bench {{index}}", "price": "9.90",
                                          "stock": 1_000_000_000}}
    )[0].pk
    for index in range({writers} + 1)
]
print("@@json " + json.dumps({{"writers": writers, "products": products}}))
"""

WRITE_PROBE = """
import django, json
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from {slug}.orders.models import Order, Product

setup = {setup!r}
writer = setup["writers"][0]
product = setup["products"][0]
client = Client(HTTP_AUTHORIZATION="Bearer " + writer["token"])
body = {{"shipping_address": "1 Bench Street", "items": [{{"product": product, "quantity": 1}}],
        "customer": writer["customer"]}}
out = {{}}
for name, url in (("rendered", "/api/v1/orders/"), ("ceiling", "/bench/create-ceiling/")):
    # Counted as under load: after a first order (the login's user is cached then).
    first = client.post(url, body, content_type="application/json", secure=True)
    assert first.status_code == 201, (url, first.status_code, first.content[:500])
    stock = Product.objects.get(pk=product).stock
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(url, body, content_type="application/json", secure=True)
    assert response.status_code == 201, (url, response.status_code, response.content[:500])
    order = Order.objects.get(pk=response.json()["id"])
    assert order.customer_id == writer["customer"] and order.items.count() == 1, url
    assert Product.objects.get(pk=product).stock == stock - 1, url
    out[name] = len(ctx.captured_queries)
    out[name + ":sql"] = [query["sql"][:100] for query in ctx.captured_queries]
print("@@json " + json.dumps(out))
"""


def settle_writes(database_url: str, customers: list[int]) -> None:
    """Mark the writers' orders paid, so each run starts with no pending orders to count."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE orders_order SET status = 'paid' WHERE status = 'pending' "
            "AND customer_id = ANY(%s)",
            (customers,),
        )


def worker_rss_mib(project: Project) -> list[float]:
    """Resident memory of each gunicorn worker serving `project` (children of its master)."""
    processes: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != project.path:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        processes[int(entry.name)] = (parent, command)
    parents = {parent for parent, _ in processes.values()}
    sizes = []
    for pid, (parent, command) in processes.items():
        # A worker: a gunicorn process started by the gunicorn master, starting none itself
        # (the master's own parent, `uv run gunicorn`, has gunicorn in its command too).
        if (
            "gunicorn" in command
            and "gunicorn" in processes.get(parent, (0, ""))[1]
            and pid not in parents
        ):
            status = Path(f"/proc/{pid}/status").read_text()
            kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
            sizes.append(kib / 1024)
    return sorted(sizes)


def cold_start(project: Project, env: dict[str, str], token: str) -> tuple[float, float]:
    """Seconds from starting gunicorn (one worker) to its first answered list page; then
    that first request's own time, in ms (what a worker's first request costs over later ones).
    """
    port = free_port()
    command = [
        str(project.path / ".venv" / "bin" / "gunicorn"),
        *("config.wsgi:application", "--workers", "1", "--bind", f"127.0.0.1:{port}"),
    ]
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"}
    url = f"http://127.0.0.1:{port}" + PATHS["rendered"].format(size=25)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=project.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if process.poll() is not None or time.perf_counter() - started > 60:
                raise SystemExit("gunicorn did not start for the cold-start measurement")
            try:
                sent = time.perf_counter()
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    answered = time.perf_counter()
                    return answered - started, (answered - sent) * 1000
            except urllib.error.HTTPError as error:
                raise SystemExit(f"cold start: {url} answered {error.code}") from error
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders to load (100000)")
    parser.add_argument("--large", action="store_true", help="load 1,000,000 orders")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (3)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (4)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers (default: what the service's gunicorn.conf.py starts, "
        "2 per CPU + 1: the service is measured the way it is deployed)",
    )
    parser.add_argument(
        "--work", type=Path, default=WORK, help="where the projects are rendered (build/bench)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of warm-up per run, 0 for none (1)"
    )
    parser.add_argument(
        "--starts", type=int, default=3, help="cold starts timed, the median reported (3)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="directory for results.md and results.png (bench/results); "
        "docs/benchmarks.md is updated only when it is the default",
    )
    args = parser.parse_args()
    orders = 1_000_000 if args.large else args.orders

    ensure_wrk()
    started_at = datetime.now(UTC)
    cursor_project, render_seconds = render_project(args.work, "cursor", {})
    offset_project, _ = render_project(args.work, "offset", {"pagination": "limit_offset"})
    slug = "bench_service"
    key = f"bench{os.getpid()}"

    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database(key))
        stack.enter_context(redis_prefix(key))
        base_env = clean_env(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, CACHE_KEY_PREFIX=key)
        for project in (cursor_project, offset_project):
            project.env = dict(base_env)
        install_seconds = timed("install", cursor_project.install)
        offset_project.install()
        test_seconds = timed("test suite", cursor_project.tests)

        for project in (cursor_project, offset_project):
            shutil.copy(ROOT / "bench" / "reference.py", project.path / "bench_urls.py")
            shutil.copy(ROOT / "bench" / "peers.py", project.path / "bench_peers.py")
            project.gate("bench packages", ["uv", "pip", "install", "--quiet", "orjson", NINJA])
        env = {
            **base_env,
            **PRODUCTION_SECRETS,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            # wrk, on loopback, plays the TLS proxy that sends X-Forwarded-Proto.
            "DJANGO_TRUSTED_PROXIES": "127.0.0.1",
            "DJANGO_THROTTLE_USER": "100000000/minute",
            "DJANGO_THROTTLE_ANON": "100000000/minute",
            "JWT_ACCESS_MINUTES": "600",
            # The offset twin refuses deep offsets by default; the bench measures what they cost.
            "DJANGO_PAGINATION_MAX_OFFSET": str(orders),
            "DJANGO_LOG_LEVEL": "WARNING",
            # The write runs place thousands of orders per writer (settled between runs).
            "DJANGO_THROTTLE_ORDERS": "100000000/minute",
            "ORDERS_MAX_PENDING": "1000000",
            "ORDERS_MAX_PENDING_UNITS": "1000000000",
        }
        # The benchmark's own URL configuration, without touching the service's settings.
        settings_shim = (
            "from config.settings.production import *  # noqa\nROOT_URLCONF = 'bench_urls'\n"
        )
        for project in (cursor_project, offset_project):
            (project.path / "bench_settings.py").write_text(settings_shim)
        env["DJANGO_SETTINGS_MODULE"] = "bench_settings"

        cursor_project.gate(
            "migrate",
            cursor_project.uv_run("python", "manage.py", "migrate", "--no-input"),
            extra_env=env,
        )
        seed_seconds = timed(
            f"seed_demo --orders {orders}",
            cursor_project.gate,
            "seed_demo",
            # Production settings: the demo command needs to be told that is meant.
            cursor_project.uv_run(
                "python", "manage.py", "seed_demo", "--orders", str(orders), "--allow-production"
            ),
            extra_env=env,
        )
        cursor_project.gate(
            "analyze",
            # Settle the freshly loaded tables, so autovacuum does not run mid-measurement.
            cursor_project.uv_run(
                "python", "manage.py", "dbshell", "--", "-c", "VACUUM ANALYZE", "-c", "CHECKPOINT"
            ),
            extra_env=env,
        )
        token = django_script(cursor_project, env, SETUP.replace("{slug}", slug))["token"]
        probes = {
            project.name: django_script(
                project,
                env,
                PROBE.format(
                    slug=slug,
                    token=token,
                    # The limit/offset twin's own lists page with ?limit=.
                    paths={
                        name: path.replace("page_size=", "limit=")
                        if project is offset_project and name.startswith("rendered")
                        else path
                        for name, path in PATHS.items()
                    },
                ),
            )
            for project in (cursor_project, offset_project)
        }

        write_setup = django_script(
            cursor_project, env, WRITE_SETUP.format(slug=slug, writers=WRITERS)
        )
        write_queries = django_script(
            cursor_project, env, WRITE_PROBE.format(slug=slug, setup=write_setup)
        )
        for name in WRITE_PATHS:
            log(f"queries of one create, {name}:\n  " + "\n  ".join(write_queries[f"{name}:sql"]))
        writers, products = write_setup["writers"], write_setup["products"]
        customers = [writer["customer"] for writer in writers]
        scripts = {
            "spread": create_script(args.work / "create-spread.lua", writers, products[:WRITERS]),
            "hot": create_script(args.work / "create-hot.lua", writers, products[WRITERS:]),
        }
        writes = {(scenario, name): Load() for scenario in scripts for name in WRITE_PATHS}

        loads = {(name, size): Load() for name in ENDPOINTS for size in PAGE_SIZES}
        deep: dict[str, dict[str, float]] = {}
        with (
            serve(cursor_project, workers=args.workers, env=env) as cursor_url,
            serve(offset_project, workers=args.workers, env=env) as offset_url,
        ):
            for round_number in range(args.rounds):
                order = ROUND_ORDER if round_number % 2 == 0 else tuple(reversed(ROUND_ORDER))
                for size in PAGE_SIZES:
                    for name in order:
                        url = cursor_url + PATHS[name].format(size=size)
                        if args.warmup:
                            wrk(url, token, duration=args.warmup, connections=args.connections)
                        rps, p50, p99 = wrk(
                            url, token, duration=args.duration, connections=args.connections
                        )
                        loads[(name, size)].add(rps, p50, p99)
                        log(
                            f"round {round_number + 1} {name:16} page {size:3}: {rps:8.1f} req/s "
                            f"p50 {p50:7.2f} ms p99 {p99:7.2f} ms"
                        )
            # After every view has been warmed up and loaded.
            rss = worker_rss_mib(cursor_project)
            log(f"resident memory per worker: {', '.join(f'{size:.0f} MiB' for size in rss)}")
            for label, base, first, deep_path in (
                ("cursor", cursor_url, "/api/v1/orders/?page_size=25", probes["cursor"]["deep"]),
                ("offset", offset_url, "/api/v1/orders/?limit=25", probes["offset"]["deep"]),
            ):
                _, first_p50, _ = wrk(
                    f"{base}{first}", token, duration=args.duration, connections=1
                )
                _, deep_p50, _ = wrk(
                    f"{base}{deep_path}", token, duration=args.duration, connections=1
                )
                deep[label] = {"first_ms": first_p50, "deep_ms": deep_p50}
                log(f"{label}: first page p50 {first_p50:.2f} ms, 90% deep p50 {deep_p50:.2f} ms")
            # Writes last: the orders they place would change the lists' first pages.
            for round_number in range(args.rounds):
                for scenario, script in scripts.items():
                    names = tuple(WRITE_PATHS)
                    for name in names if round_number % 2 == 0 else reversed(names):
                        url = cursor_url + WRITE_PATHS[name]
                        for seconds in (
                            (args.warmup, args.duration) if args.warmup else (args.duration,)
                        ):
                            settle_writes(database_url, customers)
                            rps, p50, p99 = wrk(
                                url,
                                None,
                                duration=seconds,
                                connections=WRITERS,
                                threads=WRITERS,
                                script=script,
                            )
                        writes[(scenario, name)].add(rps, p50, p99)
                        log(
                            f"round {round_number + 1} create {name:8} {scenario:6}: "
                            f"{rps:8.1f} req/s p50 {p50:7.2f} ms p99 {p99:7.2f} ms"
                        )

        # The service's own settings and URLs: the bench's views (django-ninja, ...) are not
        # part of what a deployed worker loads.
        service_env = {**env, "DJANGO_SETTINGS_MODULE": "config.settings.production"}
        starts = [cold_start(cursor_project, service_env, token) for _ in range(args.starts)]
        log(
            "cold starts: " + ", ".join(f"{s:.2f}s (first request {ms:.0f} ms)" for s, ms in starts)
        )

    report(
        results=args.results.resolve(),
        resources={
            "rss": rss,
            "start_s": statistics.median(s for s, _ in starts),
            "first_ms": statistics.median(ms for _, ms in starts),
        },
        same_rows=probes["cursor"]["same_rows"],
        writes=writes,
        write_queries=write_queries,
        started_at=started_at,
        args=args,
        orders=probes["cursor"]["orders"],
        loads=loads,
        queries=probes["cursor"]["queries"],
        deep=deep,
        costs={
            "render": render_seconds,
            "install": install_seconds,
            "test": test_seconds,
            "seed": seed_seconds,
        },
    )


def ratio(value: float, base: float, places: int = 2) -> str:
    """value / base; "n/a" when a short run completed no request of the base."""
    return f"{value / base:.{places}f}" if base else "n/a"


def report(  # type: ignore[no-untyped-def]
    *,
    results,
    resources,
    same_rows,
    writes,
    write_queries,
    started_at,
    args,
    orders,
    loads,
    queries,
    deep,
    costs,
) -> None:
    results.mkdir(parents=True, exist_ok=True)

    def per(name: str, base: str, size: int) -> str:
        return loads[(name, size)].per(loads[(base, size)])

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    command = "make bench" + (
        "" if args.orders == 100_000 and not args.large else f" ARGS='--orders {orders}'"
    )
    lines = [
        f"Run of {started_at:%Y-%m-%d %H:%M} UTC, `{command}`: {orders:,} orders on PostgreSQL, "
        f"gunicorn with {len(resources['rss'])} workers and production settings, wrk with "
        f"{args.connections} connections, median of {args.rounds} interleaved rounds of "
        f"{args.duration}s"
        + (f" (each after a {args.warmup}s warm-up); " if args.warmup else " (no warm-up); ")
        + f"{os.cpu_count()} CPUs ({cpu}). Each ratio is the median of the rounds' own "
        "ratios (a view over another measured next to it in the same round).",
        "",
        # A nested view's "vs ceiling" is against ceiling-nested.
        "| page size | view | req/s | p50 ms | p99 ms | queries/request | vs naive | vs ceiling |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in PAGE_SIZES:
        for name in ENDPOINTS:
            load = loads[(name, size)]
            rps = load.mean(load.rps)
            nested = name.endswith("nested")
            lines.append(
                f"| {size} | {name} | {rps:.0f} | {load.mean(load.p50_ms):.1f} | "
                f"{load.mean(load.p99_ms):.1f} | {queries[f'{name}:{size}']} | "
                f"{'' if nested else per(name, 'naive', size)} | "
                f"{per(name, 'ceiling-nested' if nested else 'ceiling', size)} |"
            )

    lines += [
        "",
        "| page size | rendered / plain-drf | rendered / ninja | rendered / ninja-offset "
        "| rendered / ceiling |",
        "|---|---|---|---|---|",
    ]
    for size in PAGE_SIZES:
        lines.append(
            f"| {size} | "
            + " | ".join(per("rendered", name, size) for name in (*PEERS, "ceiling"))
            + " |"
        )
    lines += [
        "",
        "| page size | rendered-nested / plain-drf-nested | rendered-nested / ninja-nested "
        "| rendered-nested / ceiling-nested |",
        "|---|---|---|---|",
    ]
    for size in PAGE_SIZES:
        lines.append(
            f"| {size} | "
            + " | ".join(
                per("rendered-nested", name, size) for name in (*NESTED_PEERS, "ceiling-nested")
            )
            + " |"
        )
    lines += [
        "",
        "Same rows: before timing, every view answered the rendered list's order ids, in its "
        "order ("
        + ", ".join(f"{rows} at page size {size}" for size, rows in same_rows.items())
        + "), the nested ones the same lines; plain-drf's rows were the rendered list's "
        "and plain-drf-nested's the rendered-nested list's, field by field.",
        "",
        "| pagination | first page p50 ms | page 90% deep p50 ms | deep / first |",
        "|---|---|---|---|",
    ]
    for label, values in deep.items():
        lines.append(
            f"| {label} | {values['first_ms']:.2f} | {values['deep_ms']:.2f} | "
            f"{ratio(values['deep_ms'], values['first_ms'], 1)} |"
        )
    lines += [
        "",
        f"| order creation, {WRITERS} clients | view | orders/s | p50 ms | p99 ms "
        "| queries/order | rendered / ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario, title in (("spread", "each its own product"), ("hot", "one hot product")):
        ceiling = writes[(scenario, "ceiling")]
        for name in WRITE_PATHS:
            load = writes[(scenario, name)]
            lines.append(
                f"| {title} | {name} | {load.mean(load.rps):.0f} | {load.mean(load.p50_ms):.1f} | "
                f"{load.mean(load.p99_ms):.1f} | {write_queries[name]} | "
                f"{load.per(ceiling)} |"
            )
    lines += [
        "",
        "| resource | figure |",
        "|---|---|",
        "| resident memory per gunicorn worker after the run, MiB | "
        + ", ".join(f"{size:.0f}" for size in resources["rss"])
        + " |",
        f"| start gunicorn (1 worker) to its first answered list page, s | "
        f"{resources['start_s']:.2f} |",
        f"| that first request alone, ms (later ones: p50 above) | {resources['first_ms']:.0f} |",
        "",
        "| cost of the template | seconds |",
        "|---|---|",
        f"| render one project (`copier copy`, lock, git) | {costs['render']:.1f} |",
        f"| install it (`uv sync --locked`) | {costs['install']:.1f} |",
        f"| run its test suite (`make test`) | {costs['test']:.1f} |",
        f"| load {orders:,} orders (`seed_demo`) | {costs['seed']:.1f} |",
    ]
    table = "\n".join(lines) + "\n"
    (results / "results.md").write_text("# Benchmark results\n\n" + table)
    plot(results, loads, deep)
    if results == RESULTS.resolve() and DOCS.exists():
        text = DOCS.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start in text and end in text:
            before, rest = text.split(start, 1)
            _, after = rest.split(end, 1)
            DOCS.write_text(f"{before}{start}\n{table}{end}{after}")
    print(table)


def plot(results, loads, deep) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    width = 0.8 / len(ENDPOINTS)
    for index, name in enumerate(ENDPOINTS):
        values = [loads[(name, size)].mean(loads[(name, size)].rps) for size in PAGE_SIZES]
        offset = (index - (len(ENDPOINTS) - 1) / 2) * width
        positions = [i + offset for i in range(len(PAGE_SIZES))]
        left.bar(positions, values, width, label=name)
    left.set_xticks(range(len(PAGE_SIZES)), [f"page size {size}" for size in PAGE_SIZES])
    left.set_ylabel("requests per second")
    left.set_ylim(top=left.get_ylim()[1] * 1.45)  # room for the legend above the bars
    left.set_title("Orders list: rendered, peers, naive, ceiling")
    left.legend(fontsize="small", ncols=2)
    labels = list(deep)
    right.bar(
        [i - 0.2 for i in range(len(labels))],
        [deep[k]["first_ms"] for k in labels],
        0.4,
        label="first page",
    )
    right.bar(
        [i + 0.2 for i in range(len(labels))],
        [deep[k]["deep_ms"] for k in labels],
        0.4,
        label="90% deep",
    )
    right.set_xticks(range(len(labels)), labels)
    right.set_ylabel("p50 latency, ms")
    right.set_title("Deep pages: cursor vs offset")
    right.legend()
    figure.tight_layout()
    figure.savefig(results / "results.png", dpi=110)


if __name__ == "__main__":
    main()
