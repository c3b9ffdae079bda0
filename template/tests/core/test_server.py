"""The production server: gunicorn.conf.py reads the environment; ASGI serves too."""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any

import environ
import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from gunicorn.config import Config
from gunicorn.glogging import Logger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn_conf(monkeypatch):
    """Read gunicorn.conf.py with only the given GUNICORN_* variables set (and no .env)."""
    monkeypatch.setattr(environ.Env, "read_env", lambda *args, **kwargs: None)

    def load(**env: str) -> dict[str, Any]:
        for name in [name for name in os.environ if name.startswith("GUNICORN_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    return load


def test_defaults_serve_wsgi_with_several_workers_and_no_access_log(gunicorn_conf):
    conf = gunicorn_conf()
    assert conf["wsgi_app"] == "config.wsgi:application"
    assert conf["worker_class"] == "sync"
    assert conf["workers"] >= 3
    assert conf["bind"] == ["0.0.0.0:8000"]
    assert conf["accesslog"] is None
    assert conf["graceful_timeout"] == 30


def test_requests_cost_no_access_log_work(gunicorn_conf):
    """gunicorn's own logger would gather the access-log fields (and fail on these)."""
    conf = gunicorn_conf()
    config = Config()
    config.set("logconfig_dict", conf["logconfig_dict"])
    logger = conf["logger_class"](config)
    assert logger.access(None, None, {}, None) is None
    with pytest.raises(AttributeError):
        Logger(config).access(None, None, {}, None)


def test_every_setting_comes_from_the_environment(gunicorn_conf):
    conf = gunicorn_conf(
        GUNICORN_BIND="127.0.0.1:9000,[::1]:9000",
        GUNICORN_WORKERS="7",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="12",
        GUNICORN_GRACEFUL_TIMEOUT="25",
        GUNICORN_KEEPALIVE="75",
        GUNICORN_MAX_REQUESTS="1000",
        GUNICORN_MAX_REQUESTS_JITTER="100",
        GUNICORN_LOG_LEVEL="warning",
    )
    assert conf["bind"] == ["127.0.0.1:9000", "[::1]:9000"]
    assert (conf["workers"], conf["threads"]) == (7, 4)
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (12, 25, 75)
    assert (conf["max_requests"], conf["max_requests_jitter"]) == (1000, 100)
    assert conf["logconfig_dict"]["loggers"]["gunicorn.error"]["level"] == "WARNING"


def test_the_uvicorn_worker_serves_the_asgi_application(gunicorn_conf):
    from gunicorn.util import load_class
    from uvicorn_worker import UvicornWorker

    conf = gunicorn_conf(GUNICORN_WORKER_CLASS="uvicorn_worker.UvicornWorker")
    assert load_class(conf["worker_class"]) is UvicornWorker
    assert conf["wsgi_app"] == "config.asgi:application"


def test_the_asgi_application_answers_liveness():
    from config.asgi import application

    async def get(path: str) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(timeout=10)
        body = b""
        while True:
            message = await communicator.receive_output(timeout=10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        return start["status"], body

    status, body = async_to_sync(get)("/health/live/")
    assert status == 200
    assert body == b'{"status":"ok"}'


def test_gunicorn_gives_the_workers_an_empty_metrics_directory(
    gunicorn_conf, monkeypatch, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_12345.db").write_bytes(b"from an earlier run")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    conf = gunicorn_conf()
    conf["on_starting"](None)
    assert list(metrics_dir.iterdir()) == []
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir)
    conf["on_exit"](None)
    assert not metrics_dir.exists()


def test_without_a_metrics_directory_each_master_gets_its_own(gunicorn_conf, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert gunicorn_conf()["metrics_dir"].endswith(f"-metrics-{os.getpid()}")
