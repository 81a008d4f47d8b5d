# Thin layer over scripts/: people and CI run the same commands.
.DEFAULT_GOAL := help
.PHONY: help setup services run test bench lint stop

help: ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

setup: ## install what is missing: Debian packages, virtualenv, the project
	@scripts/setup.sh

services: setup ## start PostgreSQL, Redis, S3 (moto), Prometheus, Alertmanager on loopback
	@scripts/services.sh

run: ## set up everything, provision the three cities with demo data, start the service
	@scripts/run.sh

test: ## set up everything and run lint, types and the whole test suite
	@scripts/test.sh

bench: ## benchmarks (all, or BENCH="forms linkage"); results to docs/benchmarks.md and bench/results/
	@scripts/bench.sh $(BENCH)

lint: setup ## ruff and mypy only
	@scripts/lint.sh

stop: ## stop the local services
	@scripts/services.sh stop
