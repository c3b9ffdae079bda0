"""The combinations of answers the harness renders, computed from copier.yml.

Every question with choices (or of type bool) is a dimension. The four
dimensions in FULL_PRODUCT are crossed completely; every other dimension is
laid over those rows so that every pair of values of any two dimensions
appears in at least one combination (pairwise coverage), adding rows only
where the base rows cannot cover a pair. Combinations that a validator of
copier.yml refuses are never produced, and their pairs are not required.

Nothing here names a choice: a new choice in copier.yml is tested without
editing this file.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined
from jinja2_ansible_filters import AnsibleCoreFiltersExtension

ROOT = Path(__file__).resolve().parent.parent
COPIER_YML = ROOT / "copier.yml"

FULL_PRODUCT = ("auth", "pagination", "database", "use_redis")

# Free-text questions worth varying, with the values to try.
FREE_TEXT_VALUES: dict[str, tuple[str, ...]] = {
    "cors_allowed_origins": ("", "https://app.example.com,http://localhost:3000"),
}

# Answers every rendered project gets (the questions without defaults).
FIXED_ANSWERS: dict[str, Any] = {"project_name": "Harness Service"}

# The names the combinations are rendered under, in turn, so that no gate can
# depend on what a project is called: slugs that sort before `config` and
# after `tests` (import order), one that starts with a digit (`svc_` prefix),
# one that collides with a module of the service (`_service` suffix) and a
# long one (its slug cut at a word to 20 characters, the longest allowed).
# The default answers are rendered as "Acme Orders", copier.yml's own
# placeholder.
PROJECT_NAMES = (
    "Acme Orders",
    "Zephyr Billing",
    "42 Logistics",
    "Users",
    "Northwind Fulfilment Services And Returns",
    "Harness Service",
)

Combination = dict[str, Any]


@dataclass(frozen=True)
class Question:
    name: str
    spec: Mapping[str, Any]

    @property
    def values(self) -> tuple[Any, ...]:
        choices = self.spec.get("choices")
        if isinstance(choices, Mapping):
            return tuple(choices.values())
        if isinstance(choices, list):
            return tuple(choices)
        if self.spec.get("type") == "bool":
            return (True, False)
        return FREE_TEXT_VALUES.get(self.name, ())

    @property
    def default(self) -> Any:
        return self.spec.get("default")


class Questionnaire:
    """The questions of copier.yml, and the validators that relate them."""

    def __init__(self, path: Path = COPIER_YML) -> None:
        config = yaml.safe_load(path.read_text())
        self.questions = {
            name: Question(name, spec)
            for name, spec in config.items()
            if not name.startswith("_") and isinstance(spec, Mapping)
        }
        self._env = Environment(
            extensions=[AnsibleCoreFiltersExtension],
            undefined=StrictUndefined,
            **{k: v for k, v in config.get("_envops", {}).items() if k != "undefined"},
        )
        self._compiled: dict[str, Any] = {}

    @cached_property
    def dimensions(self) -> dict[str, tuple[Any, ...]]:
        return {name: q.values for name, q in self.questions.items() if len(q.values) > 1}

    def defaults(self, answers: Mapping[str, Any] | None = None) -> Combination:
        """The default of every dimension, given `answers` for some questions.

        A default may be a Jinja expression of earlier answers (background_tasks
        follows use_redis), so it is computed as Copier does, from `answers`.
        """
        context = self.render_defaults(tuple(sorted((answers or {}).items())))
        return {name: context[name] for name in self.questions if name in self.dimensions}

    def _template(self, source: str) -> Any:
        if source not in self._compiled:
            self._compiled[source] = self._env.from_string(source)
        return self._compiled[source]

    def refusal(self, answers: Mapping[str, Any]) -> str:
        """The message of the first validator that refuses these answers, or ''."""
        context = {**self.render_defaults(), **answers}
        for name, question in self.questions.items():
            validator = question.spec.get("validator")
            if not validator or name not in answers:
                continue
            message = self._template(validator).render(context).strip()
            if message:
                return message
        return ""

    @cache  # noqa: B019  (one Questionnaire per copier.yml; kept for its lifetime)
    def render_defaults(self, given: tuple[tuple[str, Any], ...] = ()) -> Combination:
        """Every answer at its default, with FIXED_ANSWERS for the questions that have none.

        `given` answers some questions first (as pairs, to be hashable); the
        defaults of later questions are computed from them.
        """
        context: Combination = {**FIXED_ANSWERS, **dict(given)}
        for name, question in self.questions.items():
            if name in context:
                continue
            if isinstance(question.default, str):
                context[name] = self._template(question.default).render(context).strip()
            else:
                context[name] = question.default
        return context

    def allows(self, answers: Mapping[str, Any]) -> bool:
        return not self.refusal(answers)


def _pairs(combination: Mapping[str, Any], keys: Iterable[str]) -> set[tuple[str, Any, str, Any]]:
    ordered = sorted(k for k in keys if k in combination)
    return {(a, combination[a], b, combination[b]) for a, b in itertools.combinations(ordered, 2)}


def required_pairs(questionnaire: Questionnaire) -> set[tuple[str, Any, str, Any]]:
    """Every pair of values of two dimensions that some valid combination can hold."""
    dims = questionnaire.dimensions
    pairs = set()
    for a, b in itertools.combinations(sorted(dims), 2):
        for va, vb in itertools.product(dims[a], dims[b]):
            if questionnaire.allows({a: va, b: vb}):
                pairs.add((a, va, b, vb))
    return pairs


def build_matrix(questionnaire: Questionnaire | None = None) -> list[Combination]:
    """Full product of FULL_PRODUCT, with the other dimensions laid over it pairwise."""
    q = questionnaire or Questionnaire()
    dims = q.dimensions
    full = [k for k in FULL_PRODUCT if k in dims]
    others = [k for k in dims if k not in full]
    uncovered = required_pairs(q)
    rows: list[Combination] = []

    def complete(row: Combination) -> Combination:
        # Choose the other dimensions one at a time, each value picked to
        # cover as many uncovered pairs as possible; ties go to the value used
        # least so far (spreading choices evenly), then to the order of the
        # choices, so the matrix is deterministic.
        row = dict(row)
        for key in others:
            best = None
            used = [r[key] for r in rows]
            for value in sorted(dims[key], key=used.count):
                candidate = {**row, key: value}
                if not q.allows(candidate):
                    continue
                gain = len(_pairs(candidate, candidate) & uncovered)
                if best is None or gain > best[0]:
                    best = (gain, value)
            if best is None:
                raise ValueError(f"no valid value of {key} for {row}")
            row[key] = best[1]
        return row

    for values in itertools.product(*(dims[k] for k in full)):
        row = complete(dict(zip(full, values, strict=True)))
        rows.append(row)
        uncovered -= _pairs(row, row)

    while uncovered:
        # Seed an extra row with one uncovered pair, then fill it greedily.
        a, va, b, vb = min(uncovered, key=repr)
        seed = {a: va, b: vb}
        for key in full:
            if key not in seed:
                seed[key] = q.questions[key].default
        row = complete(seed)
        covered = _pairs(row, row) & uncovered
        if not covered:
            raise ValueError(f"cannot cover {(a, va, b, vb)}")
        rows.append(row)
        uncovered -= covered
    return rows


def quick_matrix(questionnaire: Questionnaire | None = None) -> list[Combination]:
    """A handful of combinations for development: the defaults, and each auth mode."""
    q = questionnaire or Questionnaire()
    rows = [q.defaults()]
    variations = [
        {"auth": "jwt_cookie", "pagination": "page_number", "api_versioning": "accept_header"},
        {"auth": "session", "error_format": "envelope", "use_redis": False, "example_app": False},
        {
            "auth": "token",
            "database": "sqlite",
            "pagination": "limit_offset",
            "api_versioning": "none",
        },
    ]
    for variation in variations:
        answers = {k: v for k, v in variation.items() if k in q.dimensions}
        row = {**q.defaults(answers), **answers}
        if q.allows(row):
            rows.append(row)
    return rows


def with_project_names(rows: list[Combination]) -> list[Combination]:
    """Each row with a `project_name` from PROJECT_NAMES, taken in turn."""
    return [
        {**row, "project_name": PROJECT_NAMES[index % len(PROJECT_NAMES)]}
        for index, row in enumerate(rows)
    ]


def harness_rows(option: str) -> list[Combination]:
    """The rows that test_combinations renders for `--combos all` or `quick`.

    The defaults come first, and each row is rendered under a name of its own.
    """
    questionnaire = Questionnaire()
    if option == "quick":
        return with_project_names(quick_matrix(questionnaire))
    rows = build_matrix(questionnaire)
    defaults = questionnaire.defaults()
    if defaults in rows:
        rows.remove(defaults)
    return with_project_names([defaults, *rows])


def combination_id(combination: Mapping[str, Any]) -> str:
    """A short, readable and unique name: the full-product answers first.

    The project's name is not part of it: it varies with the row, not the answers.
    """
    parts = []
    keys = [k for k in FULL_PRODUCT if k in combination]
    keys += [k for k in combination if k not in keys and k != "project_name"]
    for key in keys:
        value = combination[key]
        name = key.removeprefix("use_")
        if isinstance(value, bool):
            parts.append(name if value else f"no_{name}")
        elif key in FREE_TEXT_VALUES:
            parts.append(f"{name}_{'set' if value else 'empty'}")
        elif key == "python_version":
            parts.append(f"py{value}")
        elif key == "django_version":
            parts.append(f"dj{value}")
        else:
            parts.append(str(value))
    return "-".join(parts)


def short_hash(value: Mapping[str, Any]) -> str:
    return hashlib.sha1(repr(sorted(value.items())).encode()).hexdigest()[:10]


def iter_all() -> Iterator[Combination]:
    yield from build_matrix()
