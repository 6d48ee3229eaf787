# fieldvisit: `make run` serves the demo on http://127.0.0.1:8080, `make test` runs the whole suite.
# Both start a project-local PostgreSQL+PostGIS (installed with apt when missing) unless
# DATABASE_URL points at an existing PostGIS database.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DB_URL = $(shell scripts/db.sh url)
CARGO ?= cargo
BIN := target/release/fieldvisit
DEMO_BIN := target/release/fieldvisit-demo

.PHONY: help run test lint fmt db clean-db bench build release cluster cluster-down cluster-test

help:
	@echo "make run       start PostGIS, migrate, load demo data, serve on http://127.0.0.1:8080"
	@echo "make test      start PostGIS, run the whole test suite against it"
	@echo "make lint      cargo fmt --check, clippy -D warnings and eslint on map-ui/"
	@echo "make bench     criterion benchmarks (see BENCHMARKS.md)"
	@echo "make clean-db  stop and delete the project-local database cluster"
	@echo "make cluster   start the local HA topology (Patroni+etcd, haproxy, 3 instances; docs/operations.md)"
	@echo "make cluster-down  stop it and remove .cluster/"
	@echo "make cluster-test  the failover test on that topology (starts it when down)"

db:
	@scripts/db.sh ensure

release:
	$(CARGO) build --release --locked --workspace

run: db release
	@scripts/map-ui.sh
	@scripts/server-tools.sh
	@DATABASE_URL='$(DB_URL)' $(BIN) migrate
	@DATABASE_URL='$(DB_URL)' $(DEMO_BIN)
	@DATABASE_URL='$(DB_URL)' $(BIN) serve

test: db
	@scripts/test-tools.sh
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		DATABASE_URL='$(DB_URL)' $(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
		DATABASE_URL='$(DB_URL)' $(CARGO) test --workspace --locked --no-fail-fast; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --locked --all-targets -- -D warnings
	@# eslint is a devDependency of map-ui/: installed from the lockfile when node_modules is
	@# missing or older than it (as scripts/map-ui.sh does); --no-install never fetches another eslint.
	cd map-ui && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
		npm ci --no-audit --no-fund --loglevel=error; \
	fi && npx --no-install eslint .

fmt:
	$(CARGO) fmt --all

bench: db
	@scripts/map-ui.sh
	@scripts/test-tools.sh
	DATABASE_URL='$(DB_URL)' $(CARGO) bench --locked

clean-db:
	@scripts/db.sh clean

# The reference production layout on one machine (docs/operations.md): Patroni + etcd, haproxy,
# three instances, loopback only, everything in .cluster/. FV_BIN overrides the server binary.
cluster:
	@scripts/cluster.sh up

cluster-down:
	@scripts/cluster.sh down

# The failover test (docs/testing.md): kills the primary node, then an instance, under ingest.
# Compares the visits with a single-node run on the project-local database (make db).
cluster-test: db
	@python3 scripts/cluster_failover.py
