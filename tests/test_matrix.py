"""The matrix is computed from copier.yml, crosses the full product and covers every pair."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from .matrix import (
    COPIER_YML,
    FULL_PRODUCT,
    PROJECT_NAMES,
    Questionnaire,
    _pairs,
    build_matrix,
    combination_id,
    harness_rows,
    quick_matrix,
    required_pairs,
)


def test_full_product_is_complete() -> None:
    q = Questionnaire()
    rows = build_matrix(q)
    crossed = {tuple(row[k] for k in FULL_PRODUCT) for row in rows}
    expected = set(itertools.product(*(q.dimensions[k] for k in FULL_PRODUCT)))
    assert crossed == expected
    assert len(expected) == 48


def test_every_valid_pair_is_covered_and_no_row_is_refused() -> None:
    q = Questionnaire()
    rows = build_matrix(q)
    covered = set().union(*(_pairs(row, row) for row in rows))
    assert required_pairs(q) <= covered
    assert all(q.allows(row) for row in rows)
    assert ("django_version", "6.1", "python_version", "3.11") not in covered


def test_ids_are_unique() -> None:
    rows = build_matrix() + quick_matrix()
    ids = [combination_id(row) for row in build_matrix()]
    assert len(set(ids)) == len(ids)
    assert all(Questionnaire().allows(row) for row in rows)


def test_a_new_choice_is_picked_up_without_editing_the_harness(tmp_path: Path) -> None:
    config = yaml.safe_load(COPIER_YML.read_text())
    config["pagination"]["choices"]["Keyset"] = "keyset"
    config["ci"]["choices"]["Woodpecker"] = "woodpecker"
    changed = tmp_path / "copier.yml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    q = Questionnaire(changed)
    rows = build_matrix(q)
    assert len(rows) >= 64  # 4 x 4 x 2 x 2
    assert {"keyset"} <= {row["pagination"] for row in rows}
    assert {"woodpecker"} <= {row["ci"] for row in rows}
    covered = set().union(*(_pairs(row, row) for row in rows))
    assert required_pairs(q) <= covered


def test_project_names_cover_the_slugs_that_can_break_a_gate() -> None:
    q = Questionnaire()
    slug_of = q._template(q.questions["project_slug"].default)
    slugs = {name: slug_of.render(project_name=name).strip() for name in PROJECT_NAMES}
    assert all(not q.refusal({"project_slug": slug}) for slug in slugs.values())
    assert any(slug < "config" for slug in slugs.values())
    assert any(slug > "tests" for slug in slugs.values())
    assert slugs["42 Logistics"] == "svc_42_logistics"
    assert slugs["Users"] == "users_service"
    assert slugs["Northwind Fulfilment Services And Returns"] == "northwind_fulfilment"
    assert max(len(slug) for slug in slugs.values()) == 20


def test_the_matrix_renders_under_every_name_and_the_defaults_as_acme_orders() -> None:
    rows = harness_rows("all")
    assert rows[0] == {**Questionnaire().defaults(), "project_name": "Acme Orders"}
    assert {row["project_name"] for row in rows} == set(PROJECT_NAMES)
