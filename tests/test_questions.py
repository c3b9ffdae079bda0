"""Every validator of copier.yml refuses a bad answer, says what to type, and writes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import render
from .matrix import Questionnaire

REFUSED = [
    pytest.param({"project_name": ""}, "The name cannot be empty", id="empty-name"),
    pytest.param({"project_name": "   "}, "The name cannot be empty", id="blank-name"),
    pytest.param(
        {"project_slug": "Acme-Orders"}, "is not a lowercase Python identifier", id="slug-case"
    ),
    pytest.param(
        {"project_slug": "1orders"}, "is not a lowercase Python identifier", id="slug-digit"
    ),
    pytest.param(
        {"project_slug": "my orders"}, "is not a lowercase Python identifier", id="slug-space"
    ),
    pytest.param({"project_slug": "django"}, "would shadow", id="slug-django"),
    pytest.param({"project_slug": "rest_framework"}, "would shadow", id="slug-drf"),
    pytest.param({"project_slug": "test"}, "would shadow", id="slug-test"),
    pytest.param({"project_slug": "config"}, "would shadow", id="slug-config"),
    pytest.param({"project_slug": "class"}, "is a Python keyword", id="slug-keyword"),
    pytest.param({"project_slug": "a" * 21}, "is longer than 20 characters", id="slug-long"),
    pytest.param({"author_email": "not-an-email"}, "is not an email address", id="email"),
    pytest.param({"author_email": "a@b"}, "is not an email address", id="email-no-dot"),
    pytest.param(
        {"python_version": "3.11", "django_version": "6.1"},
        "Django 6.1 needs Python 3.12 or newer",
        id="py311-django61",
    ),
    pytest.param(
        {"cors_allowed_origins": "https://app.example.com/path"}, "is not an origin", id="cors"
    ),
    pytest.param(
        {"use_redis": False, "background_tasks": "celery"},
        "Celery needs Redis as its broker",
        id="celery-without-redis",
    ),
    pytest.param(
        {"docker": False, "kubernetes": True},
        "The Kubernetes manifests run the image that the Dockerfile builds",
        id="kubernetes-without-docker",
    ),
    pytest.param(
        {"database": "sqlite", "kubernetes": True},
        "SQLite is a file on one machine",
        id="kubernetes-on-sqlite",
    ),
    pytest.param({"auth": "oauth"}, "Invalid choice for 'auth'", id="unknown-choice"),
]


@pytest.mark.parametrize(("answers", "message"), REFUSED)
def test_bad_answer_is_refused_with_a_message_and_nothing_is_written(
    template_repo: Path, tmp_path: Path, answers: dict[str, Any], message: str
) -> None:
    destination = tmp_path / "service"
    result = render(template_repo, destination, {"project_name": "Acme Orders", **answers})
    assert result.returncode != 0
    assert message in result.stderr
    assert not destination.exists()


def test_validators_agree_with_the_harness_model() -> None:
    # The harness computes valid combinations from the same validators.
    questionnaire = Questionnaire()
    refusal = questionnaire.refusal({"python_version": "3.11", "django_version": "6.1"})
    assert "Django 6.1 needs Python 3.12" in refusal
    assert questionnaire.allows({"python_version": "3.12", "django_version": "6.1"})
    refusal = questionnaire.refusal({"use_redis": False, "background_tasks": "celery"})
    assert "choose background_tasks=none" in refusal
    assert questionnaire.allows({"use_redis": False, "background_tasks": "none"})


@pytest.mark.parametrize(("use_redis", "tasks"), [(True, "celery"), (False, "none")])
def test_background_tasks_default_follows_use_redis(
    template_repo: Path, tmp_path: Path, use_redis: bool, tasks: str
) -> None:
    assert Questionnaire().defaults({"use_redis": use_redis})["background_tasks"] == tasks
    destination = tmp_path / "service"
    result = render(
        template_repo,
        destination,
        {"project_name": "Acme Orders", "use_redis": use_redis},
        extra_args=["--skip-tasks"],
    )
    assert result.returncode == 0, result.stderr
    recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert recorded["background_tasks"] == tasks
    assert (destination / "config" / "celery.py").exists() == (tasks == "celery")


@pytest.mark.parametrize(
    ("project_name", "slug"),
    [
        ("Acme Orders", "acme_orders"),
        ("  Acme -- Orders 2 ", "acme_orders_2"),
        ("Django", "django_service"),
        ("Test", "test_service"),
        ("123 Shop", "svc_123_shop"),
        ("Northwind Traders International Fulfilment", "northwind_traders"),
    ],
)
def test_derived_slug_is_always_valid(
    template_repo: Path, tmp_path: Path, project_name: str, slug: str
) -> None:
    destination = tmp_path / "service"
    result = render(
        template_repo, destination, {"project_name": project_name}, extra_args=["--skip-tasks"]
    )
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert answers["project_slug"] == slug
    assert (destination / slug / "__init__.py").exists()


def test_answers_file_records_every_question(template_repo: Path, tmp_path: Path) -> None:
    destination = tmp_path / "service"
    result = render(
        template_repo,
        destination,
        {"project_name": "Acme Orders", "auth": "session"},
        extra_args=["--skip-tasks"],
    )
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    assert set(Questionnaire().questions) <= set(answers)
    assert answers["auth"] == "session"
    assert answers["_commit"]
    assert answers["_src_path"]


def test_copy_runs_the_post_copy_task_once(template_repo: Path, tmp_path: Path) -> None:
    destination = tmp_path / "service"
    result = render(
        template_repo, destination, {"project_name": "Acme Orders", "example_app": False}
    )
    assert result.returncode == 0, result.stderr
    assert (destination / "uv.lock").is_file()
    log = render_git(destination, "log", "--format=%s")
    assert log.splitlines() == ["Render the service from copier-drf"]
    assert render_git(destination, "status", "--porcelain") == ""


def render_git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=True
    ).stdout.strip()
