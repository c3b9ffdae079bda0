"""Static checks of the files no engine runs here: Dockerfile, compose, CI, pre-commit.

Each combination below is rendered (nothing installed) and its files are
checked with the tools their ecosystems use, offline: hadolint for the
Dockerfile, the compose specification's JSON schema, actionlint (with
shellcheck) and the workflow schema for GitHub Actions, the GitLab CI schema,
and pre-commit's own config validation. A file that must not be rendered for a
combination is checked to be absent.

The combinations cover every value of ci, docker, database and use_redis
together (GitHub and GitLab each with every database x Redis pair, Docker
with every database x Redis pair), and every value of auth, python_version
and django_version at least once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from .harness import BUILD, GateFailed, clean_env, remove, render
from .matrix import FIXED_ANSWERS, Questionnaire

COMBINATIONS: list[dict[str, Any]] = [
    {},  # the defaults: github, docker, postgresql, redis, jwt
    {"database": "sqlite", "auth": "token", "python_version": "3.13", "django_version": "6.1"},
    {"docker": False, "use_redis": False, "auth": "session", "python_version": "3.11"},
    {
        "docker": False,
        "database": "sqlite",
        "use_redis": False,
        "auth": "jwt_cookie",
        "django_version": "6.1",
    },
    {
        "ci": "gitlab",
        "database": "sqlite",
        "use_redis": False,
        "auth": "session",
        "django_version": "6.1",
    },
    {"ci": "gitlab", "use_redis": False, "auth": "jwt_cookie", "python_version": "3.11"},
    {"ci": "gitlab", "docker": False, "auth": "token", "python_version": "3.13"},
    {
        "ci": "gitlab",
        "docker": False,
        "database": "sqlite",
        "python_version": "3.13",
        "django_version": "6.1",
    },
    {
        "ci": "none",
        "docker": False,
        "auth": "token",
        "python_version": "3.11",
        "cors_allowed_origins": "https://app.example.com,http://localhost:3000",
    },
]

BIN = Path(sys.executable).parent
SEMVER_TAG = re.compile(r"^v?\d+\.\d+\.\d+$")


@dataclass
class Rendered:
    path: Path
    answers: dict[str, Any]

    def read(self, name: str) -> str:
        return (self.path / name).read_text()

    def yaml(self, name: str) -> Any:
        return yaml.safe_load(self.read(name))

    def tool(self, *command: str) -> None:
        """Run a checker from the harness's environment; fail with its output."""
        env = clean_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        result = subprocess.run(
            [str(BIN / command[0]), *command[1:]],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (
            f"$ {' '.join(command)} in {self.path}\n{result.stdout}{result.stderr}"
        )

    def required_variables(self) -> set[str]:
        """The variables the production settings refuse to start without."""
        return set(
            re.findall(r'require\("([A-Z0-9_]+)"\)', self.read("config/settings/production.py"))
        )

    def env_example_variables(self) -> set[str]:
        return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", self.read(".env.example"), re.M))


def combination_name(answers: dict[str, Any]) -> str:
    name = "-".join(f"{k}={v}" for k, v in answers.items()) or "defaults"
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


@pytest.mark.parametrize("overrides", COMBINATIONS, ids=combination_name)
def test_static_files(overrides: dict[str, Any], template_repo: Path) -> None:
    """Render one combination and check each of its static files."""
    overrides = {"example_app": False, **overrides}
    answers = {**Questionnaire().defaults(overrides), **overrides}
    destination = BUILD / "static" / f"{combination_name(overrides)}-{os.getpid()}"
    remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    result = render(template_repo, destination, {**FIXED_ANSWERS, **overrides})
    if result.returncode != 0:
        raise GateFailed(f"copier copy failed\n{result.stdout}\n{result.stderr}")
    rendered = Rendered(destination, answers)
    check_dockerfile(rendered)
    check_compose_file(rendered)
    check_github_workflow(rendered)
    check_gitlab_ci(rendered)
    check_pre_commit_config(rendered)
    remove(destination)


# ------------------------------------------------------------------ Docker


def check_dockerfile(rendered: Rendered) -> None:
    dockerfile = rendered.path / "Dockerfile"
    if not rendered.answers["docker"]:
        assert not dockerfile.exists()
        assert not (rendered.path / ".dockerignore").exists()
        assert not (rendered.path / "compose.yaml").exists()
        return
    rendered.tool("hadolint", "--no-color", "Dockerfile")
    text = dockerfile.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    # uv comes from a pinned image; build and runtime use the chosen Python.
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", stages[0]), stages
    python = f"python:{rendered.answers['python_version']}-slim"
    assert [stage for stage in stages[1:] if not stage.startswith(python)] == [], stages
    runtime = text[text.rindex("\nFROM ") :]
    user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}, user
    assert "/health/live/" in re.search(r"^HEALTHCHECK .*(?:\n\s+.*)*", runtime, re.M).group(0)
    assert "uv sync --locked --no-dev" in text
    # collectstatic at build time, with a placeholder for every required variable.
    collectstatic = next(
        run for run in re.findall(r"^RUN (?:.*\\\n)*.*$", text, re.M) if "collectstatic" in run
    )
    assert rendered.required_variables() <= set(re.findall(r"([A-Z0-9_]+)=", collectstatic))
    # Migrations are a separate step, never part of the image's start-up.
    assert "migrate" not in "".join(re.findall(r"^(?:RUN|CMD|ENTRYPOINT)\b.*", text, re.M))
    ignored = rendered.read(".dockerignore").split()
    assert {".env", ".venv/", ".git/"} <= set(ignored)


def check_compose_file(rendered: Rendered) -> None:
    if not rendered.answers["docker"]:
        assert not (rendered.path / "compose.yaml").exists()
        return
    rendered.tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    services = rendered.yaml("compose.yaml")["services"]
    expected = {"api", "migrate"}
    if rendered.answers["database"] == "postgresql":
        expected.add("db")
    if rendered.answers["use_redis"]:
        expected.add("redis")
    celery = rendered.answers["background_tasks"] == "celery"
    if celery:
        expected |= {"worker", "beat"}
    assert set(services) == expected
    for name, service in services.items():
        # beat serves nothing to probe: its restart policy watches it.
        if name not in ("migrate", "beat"):
            assert service["healthcheck"]["test"], f"{name} has no healthcheck"
    assert "migrate" in services["migrate"]["command"]
    api_waits_for = {
        name: condition["condition"] for name, condition in services["api"]["depends_on"].items()
    }
    assert api_waits_for == {
        "migrate": "service_completed_successfully",
        **dict.fromkeys(expected - {"api", "migrate", "worker", "beat"}, "service_healthy"),
    }
    # The service gets every variable production requires, and reads every one it gets.
    environment = set(services["api"]["environment"])
    assert rendered.required_variables() <= environment
    assert environment <= rendered.env_example_variables()
    # The migrations run with the api's environment; on PostgreSQL without the
    # requests' statement timeout, which a long migration would exceed.
    lifted = {"DJANGO_DB_STATEMENT_TIMEOUT_MS": "0"}
    if rendered.answers["database"] != "postgresql":
        lifted = {}
    assert services["migrate"]["environment"] == {**services["api"]["environment"], **lifted}
    if celery:
        # The worker and beat run the api's image and environment, after the migrations.
        for name in ("worker", "beat"):
            service = services[name]
            assert service["image"] == services["api"]["image"]
            assert service["environment"] == services["api"]["environment"]
            assert service["depends_on"] == services["api"]["depends_on"]
            assert service["command"][:4] == ["celery", "-A", "config", name]
        assert "inspect ping" in services["worker"]["healthcheck"]["test"][1]
        assert services["beat"]["healthcheck"] == {"disable": True}


# ------------------------------------------------------------------ CI


def check_github_workflow(rendered: Rendered) -> None:
    workflow = rendered.path / ".github" / "workflows" / "ci.yml"
    if rendered.answers["ci"] != "github":
        assert not (rendered.path / ".github").exists()
        return
    rendered.tool("actionlint", str(workflow.relative_to(rendered.path)))
    rendered.tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(workflow))
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    test = jobs["test"]
    assert set(test.get("services", {})) == services_for(rendered.answers)
    assert set(test.get("env", {})) == urls_for(rendered.answers)
    commands = [step.get("run", "") for job in jobs.values() for step in job["steps"]]
    for command in ("uv sync --locked", "make lint", "make check", "make test"):
        assert command in commands
    assert any("copier check-update" in command for command in commands)
    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@v?\d", step["uses"]), f"unpinned action {step['uses']}"


def check_gitlab_ci(rendered: Rendered) -> None:
    if rendered.answers["ci"] != "gitlab":
        assert not (rendered.path / ".gitlab-ci.yml").exists()
        return
    rendered.tool("check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml")
    config = rendered.yaml(".gitlab-ci.yml")
    assert config["default"]["image"].endswith(
        f"-python{rendered.answers['python_version']}-bookworm"
    )
    test = config["test"]
    aliases = {service["alias"] for service in test.get("services", [])}
    assert aliases == services_for(rendered.answers)
    assert urls_for(rendered.answers) <= set(test["variables"])
    scripts = [
        line for job in config.values() if isinstance(job, dict) for line in job.get("script", [])
    ]
    for command in ("uv sync --locked", "make lint", "make check", "make test"):
        assert command in scripts
    assert any("copier check-update" in line for line in scripts)


def services_for(answers: dict[str, Any]) -> set[str]:
    services = set()
    if answers["database"] == "postgresql":
        services.add("postgres")
    if answers["use_redis"]:
        services.add("redis")
    return services


def urls_for(answers: dict[str, Any]) -> set[str]:
    return {
        {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}[service]
        for service in services_for(answers)
    }


# ------------------------------------------------------------------ pre-commit


def check_pre_commit_config(rendered: Rendered) -> None:
    rendered.tool("pre-commit", "validate-config", ".pre-commit-config.yaml")
    repos = rendered.yaml(".pre-commit-config.yaml")["repos"]
    hooks = {hook["id"]: hook for repo in repos for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "django-upgrade"} <= set(hooks)
    assert {"no-conflict-markers", "no-rej-files"} <= set(hooks)
    revs = {
        repo["repo"].rsplit("/", 1)[-1]: repo["rev"] for repo in repos if repo["repo"] != "local"
    }
    assert all(SEMVER_TAG.match(rev) for rev in revs.values()), revs
    # The ruff of the hooks is one the project's own range allows (make lint, CI).
    pyproject = tomllib.loads(rendered.read("pyproject.toml"))
    ruff = next(
        Requirement(spec)
        for spec in pyproject["dependency-groups"]["dev"]
        if Requirement(spec).name == "ruff"
    )
    assert ruff.specifier.contains(revs["ruff-pre-commit"].lstrip("v")), (ruff, revs)
    target = hooks["django-upgrade"]["args"]
    assert target == ["--target-version", rendered.answers["django_version"]]


def test_pre_commit_refuses_what_a_conflicting_update_leaves(
    template_repo: Path, tmp_path: Path
) -> None:
    """Run the local hooks for real (the others are fetched from GitHub, unreachable here)."""
    destination = BUILD / "static" / f"pre-commit-hooks-{os.getpid()}"
    remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    result = render(template_repo, destination, {**FIXED_ANSWERS, "example_app": False})
    assert result.returncode == 0, result.stderr
    git = ["git", "-c", "user.name=harness", "-c", "user.email=harness@localhost"]
    toplevel = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=destination, capture_output=True, text=True
    ).stdout.strip()
    if Path(toplevel or "/") != destination:
        # post_copy.py skips `git init` inside another work tree (here, when
        # build/ sits in the template's checkout); the hooks need the
        # project's own repository.
        subprocess.run([*git, "init", "-q"], cwd=destination, check=True)
        subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
        subprocess.run(
            [*git, "commit", "-qm", "render", "--no-verify"], cwd=destination, check=True
        )
    config = yaml.safe_load((destination / ".pre-commit-config.yaml").read_text())
    config["repos"] = [repo for repo in config["repos"] if repo["repo"] == "local"]
    local_config = tmp_path / "local-hooks.yaml"
    local_config.write_text(yaml.safe_dump(config))
    env = clean_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))
    command = [str(BIN / "pre-commit"), "run", "--config", str(local_config), "--all-files"]

    def hooks() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=destination, env=env, capture_output=True, text=True, check=False
        )

    clean = hooks()
    assert clean.returncode == 0, clean.stdout + clean.stderr

    readme = destination / "README.md"
    readme.write_text(
        readme.read_text() + "<<<<<<< before updating\nold\n=======\nnew\n>>>>>>> after updating\n"
    )
    (destination / "config" / "urls.py.rej").write_text("@@ -1 +1 @@\n")
    dirty = hooks()
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "README.md:" in dirty.stdout
    assert "config/urls.py.rej" in dirty.stdout
    remove(destination)
