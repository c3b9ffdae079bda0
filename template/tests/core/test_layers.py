"""`core` is the ground floor: the service's other apps build on it, never the reverse."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib.util import resolve_name
from pathlib import Path

from django.apps import apps

CORE = apps.get_app_config("core")
SERVICE = CORE.name.rpartition(".")[0]


def imports_of(path: Path, package: str) -> Iterator[str]:
    """The absolute name of every module that the file at `path` imports."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = resolve_name("." * node.level + (node.module or ""), package)
            yield module
            # `from .. import users` imports a module by its name.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_core_imports_no_other_app_of_the_service():
    others = [
        config.name
        for config in apps.get_app_configs()
        if config.name.startswith(f"{SERVICE}.") and config is not CORE
    ]
    assert others, "the service has apps besides core"
    root = Path(CORE.path)
    offending = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join([CORE.name, *path.relative_to(root).parent.parts])
        offending += [
            f"{path.relative_to(root)} imports {module}"
            for module in imports_of(path, package)
            if any(module == app or module.startswith(f"{app}.") for app in others)
        ]
    assert offending == []
