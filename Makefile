# The developer interface of the template repository.

.PHONY: help demo test test-quick lint format bench

help:  ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

demo:  ## Render the default service into build/demo and serve it on 127.0.0.1:8000
	python3 scripts/dev.py demo

test:  ## The whole test suite: every combination, every gate (what CI runs)
	python3 scripts/dev.py test

test-quick:  ## The defaults and one combination per auth mode
	python3 scripts/dev.py test --combos quick

lint:  ## ruff on the template's own code
	uv run --locked ruff check .
	uv run --locked ruff format --check .

bench:  ## Benchmarks of the rendered service (ARGS="--orders 1000000" for more)
	python3 scripts/dev.py bench $(ARGS)

format:  ## Fix what ruff can fix in the template's own code
	uv run --locked ruff check --fix .
	uv run --locked ruff format .
