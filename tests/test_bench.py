"""`make bench` end to end, at a size that fits the suite: it runs, and reports what it promises.

The benchmark's figures are not checked (it is not a test of speed); what is
checked is that one run renders, installs, tests, seeds and serves the
project, checks that every peer and reference view answers the rendered
list's rows, drives them all with wrk, and writes a table and a plot with
every row the docs describe, with the query counts that make the comparison
meaningful: the rendered list and its peers in a constant number of queries
(django-ninja's limit/offset one more, its COUNT), the naive view in one per
row and relation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from .harness import ROOT, clean_env, run

ORDERS = 400
VIEWS = ("rendered", "plain-drf", "ninja", "ninja-offset", "naive", "ceiling")
NESTED = ("rendered-nested", "plain-drf-nested", "ninja-nested", "ceiling-nested")


@pytest.mark.usefixtures("services")
def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "results"
    docs_before = (ROOT / "docs" / "benchmarks.md").read_bytes()
    command = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        *("--orders", str(ORDERS), "--duration", "1", "--warmup", "0"),
        # Two workers a project are enough to prove the run; the default starts 2 per CPU + 1.
        *("--rounds", "1", "--starts", "1", "--workers", "2"),
        *("--work", str(tmp_path / "work"), "--results", str(results)),
    ]
    result = run(command, cwd=ROOT, env=clean_env(), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    table = (results / "results.md").read_text()
    assert f"`make bench ARGS='--orders {ORDERS}'`: {ORDERS} orders on PostgreSQL" in table
    assert "every view answered the rendered list's order ids" in table, table
    rows = {
        (size, view): int(queries)
        for size, view, queries in re.findall(
            r"^\| (\d+) \| ([a-z-]+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\d+) \|",
            table,
            re.MULTILINE,
        )
    }
    assert set(rows) == {(s, v) for s in ("25", "100") for v in (*VIEWS, *NESTED)}, rows
    for size in ("25", "100"):
        # The list's queries do not grow with the page; the naive loop's do.
        assert rows[(size, "rendered")] == rows[("25", "rendered")] <= 3, rows
        # The peers: the user, the page; ninja's limit/offset adds its COUNT.
        assert rows[(size, "plain-drf")] == rows[(size, "ninja")] == 2, rows
        assert rows[(size, "ninja-offset")] == 3, rows
        assert rows[(size, "ceiling")] == 1, rows
        assert rows[(size, "naive")] > 3 * int(size), rows
        # Orders with their lines: one more query for all of the page's lines. The
        # rendered service reads its login's user from Redis; the peers query it.
        assert rows[(size, "rendered-nested")] == rows[(size, "rendered")] + 1, rows
        for view in ("plain-drf-nested", "ninja-nested"):
            assert rows[(size, view)] == 3, rows
        assert rows[(size, "ceiling-nested")] == 2, rows
    # Every view answered the rendered list's rows before it was timed.
    assert (
        "Same rows: before timing, every view answered the rendered list's order ids, in its "
        "order (25 at page size 25, 100 at page size 100), the nested ones the same lines" in table
    ), table
    # A 1-second run on a loaded machine may complete no request of a view: "n/a".
    ratio = r"(?:[\d.]+|n/a)"
    for size in ("25", "100"):
        assert re.search(
            rf"^\| {size} \| {ratio} \| {ratio} \| {ratio} \| {ratio} \|$", table, re.MULTILINE
        ), table
        assert re.search(rf"^\| {size} \| {ratio} \| {ratio} \| {ratio} \|$", table, re.M), table
    # Order creation, rendered and hand-written, for both shapes of contention.
    creates = re.findall(
        r"^\| (each its own product|one hot product) \| (rendered|ceiling) \| [\d.]+ \| [\d.]+ "
        r"\| [\d.]+ \| (\d+) \| [\d.na/]+ \|$",
        table,
        re.MULTILINE,
    )
    assert {(shape, view) for shape, view, _ in creates} == {
        (shape, view)
        for shape in ("each its own product", "one hot product")
        for view in ("rendered", "ceiling")
    }, table
    queries = {view: int(count) for _, view, count in creates}
    # The service's create does what the ceiling does, and authenticates (its user from
    # Redis once cached): at most one query more.
    assert 6 <= queries["ceiling"] <= queries["rendered"] <= queries["ceiling"] + 1, queries
    rss = re.search(r"^\| resident memory per gunicorn worker .* \| ([\d, ]+) \|$", table, re.M)
    assert rss is not None and len(rss.group(1).split(",")) == 2, table
    assert all(20 < int(size) < 1000 for size in rss.group(1).split(",")), table
    assert re.search(r"^\| start gunicorn \(1 worker\) .* \| [\d.]+ \|$", table, re.M), table
    for pagination in ("cursor", "offset"):
        assert re.search(
            rf"^\| {pagination} \| [\d.]+ \| [\d.]+ \| {ratio} \|$", table, re.MULTILINE
        ), table
    for cost in ("render one project", "install it", "run its test suite", f"load {ORDERS}"):
        assert re.search(rf"^\| {re.escape(cost)}.* \| [\d.]+ \|$", table, re.MULTILINE), cost
    assert (results / "results.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # A run with its own --results leaves the published figures alone.
    assert (ROOT / "docs" / "benchmarks.md").read_bytes() == docs_before
