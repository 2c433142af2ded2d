# vault-plugin-secrets-zoho — see README.md.
SHELL := /usr/bin/env bash

VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null || echo v0.1.0)
PLUGIN  := vault-plugin-secrets-zoho
BIN     := $(CURDIR)/bin
GO      ?= go
FUZZTIME ?= 10s

.PHONY: all build version vault dev test lint unit e2e fuzz bench mutation mutation-diff ha-up ha-down clean release release-check

all: build

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN)/$(PLUGIN) ./cmd/$(PLUGIN)
	$(GO) build -trimpath -o $(BIN)/zoho-sim ./cmd/zoho-sim

# The version the plugin is built and registered with (a semver, as Vault wants).
version:
	@echo $(VERSION)

# A vault binary: $VAULT_BIN, `vault` on PATH, or a cached build from the module proxy.
vault:
	@bash scripts/vault.sh

# The main job: Vault + plugin + Zoho simulator + demo account, offline.
dev: build
	@bash scripts/dev.sh

# Lint, unit tests (race detector on), a short fuzz run, then the end-to-end
# suite against a real Vault server, CLI and Agent.
test: lint unit fuzz e2e

# gofmt, go vet and staticcheck (pinned, from the Go module proxy).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Packages whose tests run a real Vault server: make e2e runs them.
VAULT_TESTS := /scripts/e2e$$|/scripts/internal/vaultproc$$

unit:
	$(GO) test -race -count=1 -timeout=20m $$($(GO) list ./... | grep -v -E '$(VAULT_TESTS)')

# MODEL_SEEDS: how many seeds the lease bookkeeping model sweeps (make unit
# runs it with its four fixed seeds). make test sweeps the fixed range from
# MODEL_BASE (a failure there is a defect to fix, never a fluke); make fuzz on
# its own sweeps fresh seeds from the clock each run.
MODEL_SEEDS ?= 200
MODEL_BASE ?=
test: MODEL_BASE = 1000

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseTokenResponse$$' -fuzztime=$(FUZZTIME) ./backend/zoho/
	$(GO) test -run='^$$' -fuzz='^FuzzParseRevokeResponse$$' -fuzztime=$(FUZZTIME) ./backend/zoho/
	MODEL_SEEDS=$(MODEL_SEEDS) MODEL_BASE=$(MODEL_BASE) $(GO) test -count=1 -run='^TestLeaseModel$$' ./backend/

# The Vault launcher's own tests, then the end-to-end suite.
e2e: build
	vault_bin="$$(bash scripts/vault.sh)" && \
	VAULT_BIN="$$vault_bin" $(GO) test -race -count=1 ./scripts/internal/vaultproc/ && \
	VAULT_BIN="$$vault_bin" PLUGIN_DIR="$(BIN)" $(GO) test -count=1 -timeout=20m -v ./scripts/e2e/ 2>&1 | tee .e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go:' ; \
	rc=$${PIPESTATUS[0]}; if [ $$rc -ne 0 ]; then echo '--- whole output of the failed tests ---'; bash scripts/e2e-failed.sh .e2e.log; fi; exit $$rc

# Benchmarks against a real Vault; writes docs/benchmarks.md (about 50
# minutes: part 3's lease ends come when a 20-minute token nears its expiry,
# and part 6 counts a caching Agent's leases over three 6-minute token
# lifetimes). BENCH_MANY: the sizes of part 4 (many accounts); the report in
# docs/ is made with `make bench BENCH_MANY=10000,100000`, which takes about
# 20 minutes more.
# BENCH_KNOBS: the plugin runtime settings part 4 measures besides the
# defaults (`;` between settings).
BENCH_MANY ?= 10000
BENCH_KNOBS ?= GOGC=25;GOGC=20
bench: build
	vault_bin="$$(bash scripts/vault.sh)" && \
	VAULT_BIN="$$vault_bin" $(GO) run ./scripts/bench -many $(BENCH_MANY) -knobs '$(BENCH_KNOBS)' -out docs/benchmarks.md
	$(GO) test -run='^$$' -bench=. -benchmem ./backend/

# Release artifacts in dist/ (docs/install.md#cutting-a-release): static,
# reproducible binaries for every platform, archives, CycloneDX SBOMs,
# RELEASE_NOTES.md (the version's section of CHANGELOG.md) and SHA256SUMS.
# Archive entries carry the time of the release commit (SOURCE_DATE_EPOCH).
# A small Go program (scripts/release) rather than goreleaser: the module proxy
# here serves goreleaser only from an earlier, unapproved copy.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 315532800)
release:
	@tag="$$(git describe --tags --exact-match 2>/dev/null || true)"; \
	if [ "$$tag" != "$(VERSION)" ] && [ -z "$(RELEASE_UNTAGGED)" ]; then \
		echo "make release: HEAD is tagged '$${tag:-nothing}', not $(VERSION): tag the commit first (git tag -a $(VERSION) -m $(VERSION)), or set RELEASE_UNTAGGED=1 for a trial build"; exit 2; fi
	rm -rf dist
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./scripts/release -version $(VERSION) -out dist

# The reproducibility test for every platform, SBOMs included: two builds in
# two directories with their own GOPATH and GOCACHE (make unit runs it for
# linux/amd64 only).
release-check:
	RELEASE_CHECK_PLATFORMS=all RELEASE_CHECK_SBOM=1 $(GO) test -count=1 -timeout=60m -v -run '^TestReproducible$$' ./scripts/release/

# Mutation testing of backend/ (the simulator left out) with gremlins, pinned
# here and run from the Go module proxy; see docs/testing.md. Never part of
# make test: every mutant of backend/ takes hours. A developer runs it on
# their own change before stopping: make mutation-diff BASE=<commit> tests
# only the mutants on lines changed since BASE (uncommitted changes
# included). MUTATION_FILES=<regexp over paths under backend/> takes a slice
# of files; MUTATION_WORKERS mutants at once; MUTATION_OUT=<file> keeps the
# JSON report; MUTATION_DRY=1 only counts.
GREMLINS ?= github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
MUTATION_WORKERS ?= 1
mutation:
	GREMLINS='$(GREMLINS)' GO='$(GO)' BASE='$(BASE)' FILES='$(MUTATION_FILES)' WORKERS='$(MUTATION_WORKERS)' \
	OUT='$(MUTATION_OUT)' DRY='$(MUTATION_DRY)' bash scripts/mutation.sh

mutation-diff:
	@if [ -z '$(BASE)' ]; then echo 'usage: make mutation-diff BASE=<commit>'; exit 2; fi
	@$(MAKE) --no-print-directory mutation BASE='$(BASE)'

ha-up: build
	@bash scripts/ha-cluster.sh start

ha-down:
	@bash scripts/ha-cluster.sh stop

clean:
	rm -rf $(BIN) .e2e.log dist
