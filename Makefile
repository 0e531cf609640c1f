# Velo: build, test and try it.
GO      ?= go
BIN     ?= bin/velo
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
DEMO    ?= velo-demo
PERSONS ?= 2000

.PHONY: build test test-race vet demo bench clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/velo

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi

# The README's test command: vet, the whole suite, and the race detector on the packages
# with concurrency (ingest pipeline, ledger, query engine).
test: vet
	$(GO) test ./...
	$(GO) test -race -short $$($(GO) list ./ingest ./ledger ./query ./dp 2>/dev/null)

# Velo's main job on an embedded default: synthetic extract -> key -> ingest -> risk.
demo: build
	rm -rf $(DEMO)/synth $(DEMO)/data
	mkdir -p $(DEMO)
	$(BIN) synth --persons $(PERSONS) --seed 7 --bundles 20 --out $(DEMO)/synth
	test -f $(DEMO)/pseudonymization.key || $(BIN) keys gen --out $(DEMO)/pseudonymization.key
	$(BIN) ingest --key $(DEMO)/pseudonymization.key --opt-out $(DEMO)/synth/optout.txt --period 2024-01..2025-12 --out $(DEMO)/data $(DEMO)/synth
	$(BIN) risk --data $(DEMO)/data

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

clean:
	rm -rf bin $(DEMO)
