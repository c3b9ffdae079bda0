"""Request-scoped logging: the request id on every line, JSON in production."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar, Token
from datetime import UTC, datetime

from django.http import HttpRequest

_request_id: ContextVar[str] = ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else was passed through `extra=`.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


# Where RequestIdMiddleware keeps the id on the request itself, as Django's own
# CSRF middleware keeps its token in request.META.
REQUEST_ID_META_KEY = "REQUEST_ID"


def request_id_of(request: HttpRequest) -> str:
    """The id RequestIdMiddleware gave `request`."""
    return str(request.META.get(REQUEST_ID_META_KEY, "-"))


def current_request_id() -> str:
    """The id of the request being served, or "-" outside one."""
    return _request_id.get()


def bind_request_id(request_id: str) -> Token[str]:
    """Set the request id for the current context; returns a token for `unbind`."""
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str]) -> None:
    _request_id.reset(token)


def install_record_factory() -> None:
    """Give every log record the current request id, whichever handler sees it."""
    base_factory = logging.getLogRecordFactory()
    if getattr(base_factory, "__name__", "") == "request_id_record_factory":
        return

    def request_id_record_factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base_factory(*args, **kwargs)
        record.request_id = _request_id.get()
        return record

    logging.setLogRecordFactory(request_id_record_factory)


class RequestContextFilter(logging.Filter):
    """Adds `request_id` to records made before the factory was installed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line, with the fields passed through `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update(
            (key, value) for key, value in record.__dict__.items() if key not in _RECORD_ATTRS
        )
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
