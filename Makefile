# The two commands a new machine needs: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -buildvcs=false
SOURCE ?= csv

.PHONY: build demo test fuzz chaos bench fmt clean deps test-deps

build:
	$(GO) build -o bin/etl ./cmd/etl

# Install what the demo needs on a fresh Debian machine (PostgreSQL server
# binaries, psql, curl); test-deps adds Chromium for the HTML report test.
# Nothing is installed when it is already there.
deps:
	@./scripts/deps.sh

test-deps:
	@./scripts/deps.sh --browser

# Throwaway PostgreSQL (or $$DATABASE_URL), sandboxes on loopback, the
# sample data delivered to every partner, the summary printed.
# SOURCE=postgres reads the same sample from a core-banking schema
# (sample-data/seed.sql) instead of the CSV files.
demo: deps build
	SOURCE=$(SOURCE) ./scripts/with-postgres.sh ./scripts/demo.sh

# Every test, on real PostgreSQL, plus a short run of each fuzz target.
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	./scripts/fuzz.sh 10s

# Longer fuzzing and chaos runs (not part of make test).
fuzz:
	./scripts/fuzz.sh 2m

# make chaos CHAOS_SCHEDULES=1000 plays that many seeded fault schedules
# (docs/testing.md) beside the kill tests; CHAOS_SKIP=none plays every
# step kind, including those today's code is known to fail.
CHAOS_SCHEDULES ?= 1000
chaos: deps
	ETL_CHAOS_KILLS=20 ETL_CHAOS_SCHEDULES=$(CHAOS_SCHEDULES) $(if $(CHAOS_SKIP),ETL_CHAOS_SKIP='$(CHAOS_SKIP)') \
		$(GO) test -count=1 -timeout 240m -run 'Chaos|Kill|SIGTERM' -v ./internal/e2e/...

bench: deps build
	./scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin .tmp-sandbox.log
