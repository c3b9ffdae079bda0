"""System checks for what `check --deploy` must refuse before a release."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

# Backends whose entries live in one process (or on one host's disk): each
# worker and replica would see its own cache.
UNSHARED_CACHE_BACKENDS = frozenset(
    {
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.filebased.FileBasedCache",
        "django.core.cache.backends.locmem.LocMemCache",
    }
)


@register(Tags.caches, deploy=True)
def check_cache_is_shared(**kwargs: Any) -> list[CheckMessage]:
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in UNSHARED_CACHE_BACKENDS:
        return []
    return [
        Error(
            f"The default cache ({backend}) is not shared between processes and replicas.",
            hint="Use Redis (django_redis.cache.RedisCache) or the database cache.",
            id="core.E001",
        )
    ]
