# The two commands of the README. Both set everything up first (idempotent).
.PHONY: serve demo test setup lint

setup:
	@scripts/setup

serve: setup
	.venv/bin/safeeye serve --demo

demo: setup
	.venv/bin/safeeye demo

test: setup
	@scripts/services
	.venv/bin/ruff check src tests bench fuzz
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check src tests bench fuzz
	.venv/bin/ruff format --check src tests bench fuzz
