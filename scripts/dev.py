#!/usr/bin/env python3
"""The two commands of the README, for a fresh machine with Python 3.11+ and git.

    python3 scripts/dev.py demo    render the default service into build/demo, install it,
                                   migrate SQLite, load demo data, serve on 127.0.0.1:8000
                                   (`demo --port N` serves on another port)
    python3 scripts/dev.py test    run the template's whole test suite (extra args go to pytest)
    python3 scripts/dev.py bench   run the benchmarks (bench/run.py; extra args go to it)

Both install what they need: uv (from PyPI, into build/bootstrap when it is not
on PATH) and the template's locked development environment (.venv).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
DEMO = BUILD / "demo"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(command: list[str], **kwargs: object) -> None:
    result = subprocess.run(command, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"error: `{' '.join(map(str, command))}` failed (exit {result.returncode})")


def find_uv() -> str:
    uv = shutil.which("uv")
    if uv:
        return uv
    bootstrap = BUILD / "bootstrap"
    uv_path = bootstrap / "bin" / "uv"
    if not uv_path.exists():
        say("installing uv from PyPI into build/bootstrap")
        venv.create(bootstrap, with_pip=True)
        run([str(bootstrap / "bin" / "python"), "-m", "pip", "install", "--quiet", "uv"])
    return str(uv_path)


PYENV_MINORS = ("3.11", "3.12", "3.13")


def with_pyenv_pythons(env: dict[str, str]) -> dict[str, str]:
    """Make every CPython 3.11-3.13 that pyenv holds resolvable as python3.X.

    uv looks for interpreters on PATH, and a pyenv shim for a version that is not
    selected exits 127: uv then stops with "Failed to inspect Python interpreter".
    So PYENV_VERSION keeps what is selected (or pyenv's global version) first and
    adds the newest installed patch release of each minor version that is missing.
    Without pyenv this changes nothing.
    """
    root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    if not (root / "versions").is_dir():
        return env
    selected = env.get("PYENV_VERSION", "")
    if not selected and (root / "version").is_file():
        selected = ":".join((root / "version").read_text().split())
    chosen = [v for v in selected.split(":") if v and v != "system"]
    installed = sorted(
        (d.name for d in (root / "versions").iterdir() if d.name.startswith(PYENV_MINORS)),
        key=lambda name: tuple(int(part) for part in name.split(".") if part.isdigit()),
    )
    for minor in PYENV_MINORS:
        if not any(v == minor or v.startswith(f"{minor}.") for v in chosen):
            newest = [v for v in installed if v.startswith(f"{minor}.")]
            if newest:
                chosen.append(newest[-1])
    if chosen:
        env["PYENV_VERSION"] = ":".join(chosen)
    return env


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    # Compiled bytecode is kept (in __pycache__, ignored by git) even where the
    # shell says not to write it: the suite starts Python hundreds of times.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return with_pyenv_pythons(env)


def sync_template_env(uv: str, env: dict[str, str]) -> None:
    say("installing the template's development environment (.venv)")
    run([uv, "sync", "--locked", "--quiet"], cwd=ROOT, env=env)


def demo(uv: str, env: dict[str, str], args: list[str]) -> None:
    port = demo_port(args)
    sync_template_env(uv, env)
    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.parent.mkdir(parents=True, exist_ok=True)
    say(f"rendering the default service into {DEMO.relative_to(ROOT)}")
    run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            "--data",
            "project_name=Demo Service",
            str(ROOT),
            str(DEMO),
        ],
        env={**env, "PATH": f"{Path(uv).parent}{os.pathsep}{env['PATH']}"},
    )
    # The demo runs on SQLite and the database cache: no server needed.
    local = {k: v for k, v in env.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    local["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    manage = [uv, "run", "--locked", "python", "manage.py"]
    say("installing the service")
    run([uv, "sync", "--locked", "--quiet"], cwd=DEMO, env=local)
    say("migrating SQLite and loading demo data")
    run([*manage, "migrate", "--no-input", "-v", "0"], cwd=DEMO, env=local)
    run([*manage, "createcachetable"], cwd=DEMO, env=local)
    run([*manage, "seed_demo"], cwd=DEMO, env=local)
    base = f"http://127.0.0.1:{port}"
    print(
        f"\n  API          {base}/api/v1/\n"
        f"  Swagger UI   {base}/api/docs/\n"
        f"  ReDoc        {base}/api/redoc/\n"
        f"  Schema       {base}/api/schema/\n"
        f"  Health       {base}/health/live/  {base}/health/ready/\n"
        f"  Project      {DEMO}\n"
        "  Stop with Ctrl-C.\n",
        flush=True,
    )
    os.chdir(DEMO)
    os.execvpe(uv, [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], local)


def demo_port(args: list[str]) -> int:
    if not args:
        return 8000
    if len(args) == 2 and args[0] == "--port" and args[1].isdigit() and 0 < int(args[1]) < 65536:
        return int(args[1])
    sys.exit(f"error: `demo` takes only `--port N` (1-65535), not {' '.join(args)!r}")


def test(uv: str, env: dict[str, str], args: list[str]) -> None:
    sync_template_env(uv, env)
    say("running the template's test suite")
    # One test process more than there are CPUs: much of the suite waits on
    # servers (gunicorn, Celery, PgBouncer, nginx, SMTP), and a third process
    # keeps two CPUs busy meanwhile.
    workers = str((os.cpu_count() or 1) + 1)
    command = [uv, "run", "--locked", "pytest", "-n", workers, "--dist", "worksteal"]
    # The slowest tests are listed at the end, beside the time per gate.
    command += ["--durations=30", *args]
    os.chdir(ROOT)
    os.execvpe(uv, command, env)


def bench(uv: str, env: dict[str, str], args: list[str]) -> None:
    sync_template_env(uv, env)
    os.chdir(ROOT)
    os.execvpe(uv, [uv, "run", "--locked", "python", "bench/run.py", *args], env)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "bench"}:
        sys.exit(__doc__)
    if sys.version_info < (3, 11):  # noqa: UP036  (this script runs on any python3)
        sys.exit("error: Python 3.11 or newer is needed")
    uv = find_uv()
    env = environment()
    env["PATH"] = f"{Path(uv).parent}{os.pathsep}{env.get('PATH', '')}"
    if sys.argv[1] == "demo":
        demo(uv, env, sys.argv[2:])
    elif sys.argv[1] == "bench":
        bench(uv, env, sys.argv[2:])
    else:
        test(uv, env, sys.argv[2:])


if __name__ == "__main__":
    main()
