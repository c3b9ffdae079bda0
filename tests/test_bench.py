"""`make bench` end to end, at a size that fits the suite: it runs, and reports what it promises.

The benchmark's figures are not checked (it is not a test of speed); what is
checked is that one run renders, installs, tests, seeds and serves the
project, drives all three views with wrk, and writes a table and a plot with
every row the docs describe, with the query counts that make the comparison
meaningful: the rendered list in a constant number of queries, the naive view
in one per row and relation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from .harness import ROOT, clean_env, run

ORDERS = 400


@pytest.mark.usefixtures("services")
def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "results"
    docs_before = (ROOT / "docs" / "benchmarks.md").read_bytes()
    command = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        *("--orders", str(ORDERS), "--duration", "1", "--warmup", "1", "--rounds", "1"),
        *("--work", str(tmp_path / "work"), "--results", str(results)),
    ]
    result = run(command, cwd=ROOT, env=clean_env(), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    table = (results / "results.md").read_text()
    assert f"`make bench ARGS='--orders {ORDERS}'`: {ORDERS} orders on PostgreSQL" in table
    rows = {
        (size, view): int(queries)
        for size, view, queries in re.findall(
            r"^\| (\d+) \| (rendered|naive|ceiling) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (\d+) \|",
            table,
            re.MULTILINE,
        )
    }
    assert set(rows) == {(s, v) for s in ("25", "100") for v in ("rendered", "naive", "ceiling")}
    for size in ("25", "100"):
        # The list's queries do not grow with the page; the naive loop's do.
        assert rows[(size, "rendered")] == rows[("25", "rendered")] <= 3, rows
        assert rows[(size, "ceiling")] == 1, rows
        assert rows[(size, "naive")] > 3 * int(size), rows
    assert re.search(r"^\| cursor \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", table, re.MULTILINE), table
    assert re.search(r"^\| offset \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", table, re.MULTILINE), table
    for cost in ("render one project", "install it", "run its test suite", f"load {ORDERS}"):
        assert re.search(rf"^\| {re.escape(cost)}.* \| [\d.]+ \|$", table, re.MULTILINE), cost
    assert (results / "results.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # A run with its own --results leaves the published figures alone.
    assert (ROOT / "docs" / "benchmarks.md").read_bytes() == docs_before
