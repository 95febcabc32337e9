# The two commands a new machine needs: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
# Binaries carry their VCS commit (etl version, runs.version).
SOURCE ?= csv

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build demo test lint image fuzz chaos bench fmt clean deps test-deps

build:
	$(GO) build -buildvcs=auto -o bin/etl ./cmd/etl

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

# Every test, on real PostgreSQL, plus a short run of each fuzz target,
# the lint checks, and the deployment modules (image and manifests).
test: test-deps lint image
	$(GO) test -race -count=1 -timeout 20m ./...
	cd deploy/image && ETL_IMAGE=$(CURDIR)/bin/etl-image.tar $(GO) test -count=1 ./...
	cd deploy/k8s && $(GO) test -count=1 ./...
	./scripts/fuzz.sh 10s

# go vet, gofmt, a tidy go.mod in every module, and staticcheck.
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt would change: $$out"; exit 1; }
	$(GO) mod tidy -diff
	cd deploy/image && $(GO) mod tidy -diff
	cd deploy/k8s && $(GO) mod tidy -diff
	$(GO) run $(STATICCHECK) ./...

# The container image as an OCI archive, without a Docker engine:
# bin/etl-image.tar (docker load, podman load, skopeo copy oci-archive:).
image:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -trimpath -o bin/etl-static ./cmd/etl
	cd deploy/image && $(GO) run . -binary ../../bin/etl-static -out ../../bin/etl-image.tar -tag etl:$(VERSION) -version $(VERSION) -revision $$(git rev-parse HEAD 2>/dev/null)
	@echo "image: bin/etl-image.tar (etl:$(VERSION))"

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
