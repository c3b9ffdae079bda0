"""Render every combination of the matrix and run each project's gates.

Gates, in order (DESIGN section 6): copier copy; no leftover Jinja or empty
files; uv sync --locked; ruff check; ruff format --check; mypy; check --deploy
under production settings; makemigrations --check; spectacular --validate;
the project's own pytest with its coverage floor, against the real
PostgreSQL and Redis when the combination uses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .harness import record_timings
from .matrix import Questionnaire, combination_id, harness_rows
from .projects import rendered_project


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "combination" in metafunc.fixturenames:
        rows = harness_rows(metafunc.config.getoption("combos"))
        metafunc.parametrize("combination", rows, ids=[combination_id(r) for r in rows])


@pytest.mark.usefixtures("services")
def test_combination(combination: dict[str, Any], template_repo: Path) -> None:
    name = combination_id(combination)
    with rendered_project(
        template_repo, combination, name, install=False, worker_venv=True
    ) as project:
        project.check_files()
        project.install()
        project.lint()
        project.django_checks()
        if {k: v for k, v in combination.items() if k != "project_name"} == (
            Questionnaire().defaults()
        ):
            # The same checks as a team runs them, one command at a time.
            project.gate("make check", ["make", "--no-print-directory", "check"])
        project.tests()
        record_timings(project)
