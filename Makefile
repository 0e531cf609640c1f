# Velo: build, test and try it.
GO      ?= go
BIN     ?= bin/velo
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
DEMO    ?= velo-demo
PERSONS ?= 20000

.PHONY: build test test-race vet demo bench clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/velo

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi

# The README's test command: vet, the whole suite (the API's load test, headless Chromium
# and notebook tests included), and the race detector on the packages with concurrency
# (ingest pipeline, ledger, query engine, HTTP API).
test: vet
	$(GO) test ./...
	$(GO) test -race -short $$($(GO) list ./ingest ./ledger ./query ./dp ./notebooks-api 2>/dev/null)

# The one-command demo: synthetic extract -> key -> ingest -> project "wl" -> the HTTP API
# on 127.0.0.1:8080 with researcher, official and DPO tokens (printed, and in
# $(DEMO)/tokens.json). Ctrl-C stops it; running it again reuses $(DEMO).
demo: build
	$(BIN) demo --dir $(DEMO) --persons $(PERSONS)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

clean:
	rm -rf bin $(DEMO)
