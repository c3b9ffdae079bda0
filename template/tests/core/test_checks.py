"""`check --deploy` refuses a cache that each worker would keep to itself."""

from __future__ import annotations

import pytest
from django.core.checks import Tags, run_checks


def cache_errors() -> list[str]:
    messages = run_checks(tags=[Tags.caches], include_deployment_checks=True)
    return [message.id for message in messages if message.id and message.id.startswith("core.")]


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    ],
)
def test_deploy_check_refuses_a_per_process_cache(settings, backend):
    settings.CACHES = {"default": {"BACKEND": backend}}
    assert cache_errors() == ["core.E001"]


def test_deploy_check_accepts_the_configured_cache():
    assert cache_errors() == []


def test_the_check_is_for_deployments_only(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert run_checks(tags=[Tags.caches]) == []
