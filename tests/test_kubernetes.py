"""The Kubernetes manifests (kubernetes=true) of every combination they differ by.

Each combination below is rendered (nothing installed); `kubectl kustomize`
builds each overlay; every object is validated against the schemas of
KUBERNETES_VERSION (kubernetes-validate, strict: no unknown field); checkov
scans both overlays at once and must fail no check, its skips being the
annotated ones in the manifests, each with its reason. Then the objects are
read as a user of the service would: the web Deployment matches the
Dockerfile (user, port, command) and gunicorn.conf.py (graceful timeout), the
settings production requires are all given, secrets only by reference, and
the image's tag is set in one place per overlay.

The combinations are those of background_tasks and use_redis that the
validators allow with kubernetes (PostgreSQL only: copier.yml refuses SQLite
and a render without the Dockerfile), each with another auth mode, since the
auth mode decides the secrets.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .harness import BUILD, ROOT, GateFailed, clean_env, remove, render, run
from .matrix import FIXED_ANSWERS

# The schemas the objects must satisfy: a recent release, pinned so that a
# new kubernetes-validate does not change the verdict by itself.
KUBERNETES_VERSION = "1.37.0"
# checkov runs from its own cached environment (uv tool run): its pins clash
# with the harness's (and it is large); pinned so its checks stay the same.
CHECKOV = "checkov==3.3.30"
CHECKOV_RUN = ("uv", "tool", "run", "--from", CHECKOV, "checkov")
OVERLAYS = ("staging", "production")
OPTIONAL_SECRETS = {"SENTRY_DSN", "METRICS_TOKEN"}

COMBINATIONS: list[dict[str, Any]] = [
    {"background_tasks": "celery", "use_redis": True, "auth": "jwt"},
    {"background_tasks": "none", "use_redis": True, "auth": "session"},
    {
        "background_tasks": "none",
        "use_redis": False,
        "auth": "token",
        "error_tracking": "none",
        "example_app": True,
    },
    {
        "background_tasks": "celery",
        "use_redis": True,
        "auth": "jwt_cookie",
        "project_name": "42 Logistics",
        "cors_allowed_origins": "https://app.example.com,http://localhost:3000",
    },
]

BIN = Path(sys.executable).parent


def combination_name(answers: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(str(v) for v in answers.values()))


def tool(*command: str, cwd: Path, timeout: float = 300) -> str:
    env = clean_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = run(command, cwd=cwd, env=env, timeout=timeout)
    if result.returncode != 0:
        raise GateFailed(f"$ {' '.join(command)} in {cwd}\n{result.stdout}{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def checkov_ready() -> None:
    """Install checkov into uv's cache once per test worker, before the clock of a test runs."""
    tool(
        *CHECKOV_RUN,
        "--version",
        cwd=ROOT,
        timeout=600,
    )


@pytest.mark.parametrize("overrides", COMBINATIONS, ids=combination_name)
def test_manifests(overrides: dict[str, Any], template_repo: Path, checkov_ready: None) -> None:
    answers = {**FIXED_ANSWERS, "example_app": False, **overrides, "kubernetes": True}
    destination = BUILD / "kubernetes" / f"{combination_name(overrides)}-{os.getpid()}"
    remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    result = render(template_repo, destination, answers)
    if result.returncode != 0:
        raise GateFailed(f"copier copy failed\n{result.stdout}\n{result.stderr}")

    recorded = yaml.safe_load((destination / ".copier-answers.yml").read_text())
    built = {}
    for overlay in OVERLAYS:
        output = tool(
            str(BIN / "kubectl"), "kustomize", f"deploy/k8s/overlays/{overlay}", cwd=destination
        )
        path = destination / f"{overlay}.rendered.yaml"
        path.write_text(output)
        built[overlay] = [doc for doc in yaml.safe_load_all(output) if doc]
    files = [f"{overlay}.rendered.yaml" for overlay in OVERLAYS]

    validated = tool(
        str(BIN / "kubernetes-validate"),
        "--strict",
        "--kubernetes-version",
        KUBERNETES_VERSION,
        *files,
        cwd=destination,
    )
    objects = sum(len(docs) for docs in built.values())
    assert validated.count(" passed for resource ") == objects, validated

    scan = tool(
        *CHECKOV_RUN,
        "--framework",
        "kubernetes",
        "--skip-download",
        "--quiet",
        "--compact",
        "--output",
        "json",
        *(arg for name in files for arg in ("--file", name)),
        cwd=destination,
    )
    summary = json.loads(scan)
    reports = summary if isinstance(summary, list) else [summary]
    failed = [
        check for report in reports for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed
    )
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0
        assert report["summary"]["passed"] > 0
    # Every skip is an annotation of the manifests that gives its reason.
    for docs in built.values():
        for doc in docs:
            for key, value in doc["metadata"].get("annotations", {}).items():
                if key.startswith("checkov.io/skip"):
                    assert re.fullmatch(r"CKV2?_K8S_\d+=\S.{20,}", value), (key, value)

    for overlay, docs in built.items():
        check_objects(destination, recorded, overlay, docs)
    remove(destination)


def by_kind(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def check_objects(
    project: Path, answers: dict[str, Any], overlay: str, docs: list[dict[str, Any]]
) -> None:
    app = answers["project_slug"].replace("_", "-")
    objects = by_kind(docs)
    celery = answers["background_tasks"] == "celery"
    expected = {
        ("Deployment", f"{app}-web"),
        ("Service", f"{app}-web"),
        ("Ingress", app),
        ("HorizontalPodAutoscaler", f"{app}-web"),
        ("PodDisruptionBudget", f"{app}-web"),
        ("NetworkPolicy", app),
        ("NetworkPolicy", f"{app}-web"),
        ("Job", f"{app}-migrate"),
    }
    if celery:
        expected |= {("Deployment", f"{app}-worker"), ("Deployment", f"{app}-beat")}
    else:
        # The periodic jobs, which beat sends to the worker otherwise.
        expected.add(("CronJob", f"{app}-flush-expired"))
        if answers["example_app"]:
            expected.add(("CronJob", f"{app}-expire-orders"))
    configmaps = [doc for doc in docs if doc["kind"] == "ConfigMap"]
    assert len(configmaps) == 1
    assert set(objects) - {("ConfigMap", configmaps[0]["metadata"]["name"])} == expected
    # One namespace per overlay, on every object; no Secret carries a value here.
    namespaces = {doc["metadata"].get("namespace") for doc in docs}
    assert namespaces == {app if overlay == "production" else f"{app}-{overlay}"}
    assert "Secret" not in {doc["kind"] for doc in docs}
    settings = configmaps[0]["data"]

    dockerfile = (project / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]
    user = int(re.findall(r"^USER\s+(\d+)", runtime, re.M)[-1])
    port = int(re.search(r"^EXPOSE\s+(\d+)", runtime, re.M).group(1))
    gunicorn = (project / "gunicorn.conf.py").read_text()
    graceful = int(re.search(r'"GUNICORN_GRACEFUL_TIMEOUT", default=(\d+)', gunicorn).group(1))
    graceful = int(settings.get("GUNICORN_GRACEFUL_TIMEOUT", graceful))
    production_settings = (project / "config" / "settings" / "production.py").read_text()
    required = set(re.findall(r'require\("([A-Z0-9_]+)"\)', production_settings))
    env_example = set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (project / ".env.example").read_text(), re.M)
    )

    images = set()
    workloads = [doc for doc in docs if doc["kind"] in ("Deployment", "Job", "CronJob")]
    for workload in workloads:
        pod = pod_template(workload)["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == user
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        images.add(container["image"])
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        # /tmp is writable (an emptyDir) where the root filesystem is not.
        assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}
        # Every setting production requires, from the ConfigMap or the Secret;
        # only variables the service reads.
        secrets = {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in container["env"]
            if "valueFrom" in item
        }
        values = {item["name"]: item["value"] for item in container["env"] if "value" in item}
        for name, ref in secrets.items():
            assert (ref["name"], ref["key"]) == (f"{app}-secrets", name)
            # Only these may be missing: then nothing goes to Sentry, /metrics/ is 404.
            assert ref.get("optional", False) == (name in OPTIONAL_SECRETS), name
        assert OPTIONAL_SECRETS & set(secrets) == OPTIONAL_SECRETS & env_example
        if workload["kind"] == "Job":
            # Migrations are not cut short by the requests' statement timeout.
            assert values == {"DJANGO_DB_STATEMENT_TIMEOUT_MS": "0"}
        else:
            assert values == {}
        assert container["envFrom"] == [
            {"configMapRef": {"name": configmaps[0]["metadata"]["name"]}}
        ]
        given = set(secrets) | set(settings) | set(values)
        assert required <= given, required - given
        assert given <= env_example, given - env_example
        assert not set(secrets) & set(settings)
        assert not set(values) & (set(secrets) | set(settings))
    # The image of every workload is this overlay's, set once (kustomize images:).
    assert len(images) == 1
    (image,) = images
    kustomization = yaml.safe_load(
        (project / "deploy" / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text()
    )
    (entry,) = kustomization["images"]
    assert image == f"{entry['newName']}:{entry['newTag']}"

    web = objects[("Deployment", f"{app}-web")]
    assert web["spec"]["replicas"] >= 2
    pod = web["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "command" not in container and "args" not in container  # the image's CMD: gunicorn
    assert re.search(r'^CMD \["gunicorn"\]', runtime, re.M)
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live/"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live/"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready/"
    probe_hosts = {
        header["value"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
        for header in container[probe]["httpGet"]["httpHeaders"]
        if header["name"] == "Host"
    }
    assert probe_hosts <= set(settings["DJANGO_ALLOWED_HOSTS"].split(","))
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + graceful
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert "/dev/shm" in mounts  # gunicorn's worker_tmp_dir
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} >= {
        "kubernetes.io/hostname"
    }
    strategy = web["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0

    ingress = objects[("Ingress", app)]
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    assert host in settings["DJANGO_ALLOWED_HOSTS"].split(",")
    assert (overlay == "production") == (host == "api.example.com")
    assert settings["DJANGO_TRUSTED_PROXIES"]
    assert settings["GUNICORN_WORKERS"]
    # Errors reach Sentry under the overlay's name (with error_tracking=sentry).
    sentry = "SENTRY_DSN" in env_example
    assert settings.get("SENTRY_ENVIRONMENT") == (overlay if sentry else None)
    web_policy = objects[("NetworkPolicy", f"{app}-web")]["spec"]
    assert web_policy["ingress"][0]["from"][0]["namespaceSelector"]
    assert objects[("HorizontalPodAutoscaler", f"{app}-web")]["spec"]["minReplicas"] >= 2
    assert objects[("PodDisruptionBudget", f"{app}-web")]["spec"]["minAvailable"] == 1

    job = objects[("Job", f"{app}-migrate")]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "manage.py",
        "migrate",
        "--no-input",
    ]
    assert "initContainers" not in pod
    if celery:
        worker = objects[("Deployment", f"{app}-worker")]["spec"]["template"]["spec"]
        assert worker["containers"][0]["command"][:4] == ["celery", "-A", "config", "worker"]
        beat = objects[("Deployment", f"{app}-beat")]["spec"]
        assert beat["replicas"] == 1
        assert beat["strategy"] == {"type": "Recreate"}
        assert beat["template"]["spec"]["containers"][0]["command"][:4] == [
            "celery",
            "-A",
            "config",
            "beat",
        ]
    else:
        check_cron_jobs(project, answers, objects)


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    return (
        spec["jobTemplate"]["spec"]["template"]
        if workload["kind"] == "CronJob"
        else spec["template"]
    )


def check_cron_jobs(
    project: Path, answers: dict[str, Any], objects: dict[tuple[str, str], dict[str, Any]]
) -> None:
    """Without a worker, CronJobs run what `make flush-expired` runs, and expire_orders."""
    app = answers["project_slug"].replace("_", "-")
    makefile = (project / "Makefile").read_text()
    target = makefile[makefile.index("\nflush-expired:") :].split("\n\n")[0]
    commands = re.findall(r"^\t\$\(MANAGE\) (\w+)$", target, re.M)
    assert "flushexpiredthrottles" in commands
    jobs = {"flush-expired": " && ".join(f"python manage.py {name}" for name in commands)}
    if answers["example_app"]:
        jobs["expire-orders"] = "python manage.py expire_orders"
    for name, shell in jobs.items():
        cron_job = objects[("CronJob", f"{app}-{name}")]
        assert cron_job["spec"]["concurrencyPolicy"] == "Forbid"
        pod = pod_template(cron_job)
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == app  # the egress policy's
        assert pod["spec"]["restartPolicy"] == "Never"
        command = pod["spec"]["containers"][0]["command"]
        assert (command[2] if command[:2] == ["sh", "-c"] else " ".join(command)) == shell
    assert objects[("CronJob", f"{app}-flush-expired")]["spec"]["schedule"] == "17 3 * * *"
    if answers["example_app"]:
        assert objects[("CronJob", f"{app}-expire-orders")]["spec"]["schedule"] == "*/5 * * * *"


def test_no_manifests_unless_asked(template_repo: Path) -> None:
    """kubernetes=false (the default) renders no deploy/k8s; the nginx example ships anyway."""
    destination = BUILD / "kubernetes" / f"without-{os.getpid()}"
    remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    result = render(template_repo, destination, {**FIXED_ANSWERS, "example_app": False})
    assert result.returncode == 0, result.stderr
    assert not (destination / "deploy" / "k8s").exists()
    assert (destination / "deploy" / "nginx" / "harness_service.conf").is_file()
    remove(destination)
