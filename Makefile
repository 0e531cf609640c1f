# Velo: build, test and try it.
GO      ?= go
BIN     ?= bin/velo
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
DEMO    ?= velo-demo
PERSONS ?= 100000

PLUGIN      := grafana-plugin
PLUGIN_DIST := $(PLUGIN)/dist
# The backend executables Grafana picks from by host (plugin.json's "executable": gpx_velo).
PLUGIN_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64

# Velo's Go packages: ./... without the Go code some npm packages ship in node_modules.
GO_PKGS = $$($(GO) list ./... | grep -v /node_modules/)
# The documentation's examples run once, in their own target, with their report.
DOCS_EXAMPLES = ./internal/docsexamples

.PHONY: build test test-race vet demo bench bench-peers bench-synth fuzz clean plugin plugin-frontend plugin-backend test-plugin docs-examples

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/velo

vet:
	$(GO) vet $(GO_PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi

# The README's test command: vet, the Grafana plugin's build and frontend tests, the whole
# Go suite (the API's load test, headless Chromium, notebook and plugin tests included),
# the documentation's examples on a fresh demo, the race detector on the packages with
# concurrency (ingest pipeline, ledger, query engine, HTTP API, the plugin's backend), and
# a short run of every fuzz target.
# The Go suite runs through internal/testsummary: go test's usual output, then the tests
# that skipped for want of the fixtures (VELO_FIXTURES) or a tool, listed again at the very
# end. Under CI=true those tests fail instead.
TEST_FUZZTIME ?= 5s
TEST_SUMMARY  := bin/test-summary.txt
test: vet test-plugin
	@mkdir -p $(dir $(TEST_SUMMARY))
	$(GO) run ./internal/testsummary -go $(GO) -summary $(TEST_SUMMARY) -- -timeout 30m $$($(GO) list ./... | grep -v /node_modules/ | grep -v /internal/docsexamples$$)
	$(MAKE) docs-examples
	$(GO) test -race -short $$($(GO) list ./ingest ./ledger ./query ./dp ./notebooks-api ./grafana-plugin/... | grep -v /node_modules/)
	$(MAKE) fuzz FUZZTIME=$(TEST_FUZZTIME)
	@cat $(TEST_SUMMARY)

# The documentation's examples (internal/docsexamples): a fresh velo demo in a directory of
# its own on a free port, every command block of README.md and docs/*.md run against it in
# order (the notebook headless, the Grafana dashboard through the plugin's backend), every
# answer compared with plain DuckDB's exact one, and the demo's budget checked. It prints
# the blocks run and skipped (with why), the accuracy of each answer and the budgets.
docs-examples:
	$(GO) test -count=1 -v -timeout 30m $(DOCS_EXAMPLES)

# The Grafana data source: the frontend (webpack) and the backend executables, into
# grafana-plugin/dist, ready to copy into Grafana's plugins directory (docs/grafana.md).
plugin: plugin-frontend plugin-backend

$(PLUGIN)/node_modules/.package-lock.json: $(PLUGIN)/package-lock.json $(PLUGIN)/package.json
	cd $(PLUGIN) && npm ci --no-audit --no-fund

plugin-frontend: $(PLUGIN)/node_modules/.package-lock.json
	cd $(PLUGIN) && npm run build

# After the frontend: its build empties dist/.
plugin-backend: plugin-frontend
	@set -e; for p in $(PLUGIN_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  echo "go build $(PLUGIN_DIST)/gpx_velo_$${os}_$${arch}$$ext"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
	    -ldflags "-s -w -X github.com/velo-fse/velo/grafana-plugin/pkg/plugin.Version=$(VERSION)" \
	    -o $(PLUGIN_DIST)/gpx_velo_$${os}_$${arch}$$ext ./$(PLUGIN)/pkg; \
	done

# The frontend's type check and jest tests, on the plugin built for this host only (each
# other platform is a full cross-compile of the SDK's dependencies: minutes). The Go side
# of the plugin is in `go test ./...`: macros, frames, a live Velo, gRPC, the executable
# under go-plugin.
test-plugin:
	$(MAKE) plugin PLUGIN_PLATFORMS=$$($(GO) env GOOS)/$$($(GO) env GOARCH)
	cd $(PLUGIN) && npm run typecheck && npm run lint && CI=true npm test
	@for f in plugin.json module.js gpx_velo_linux_amd64; do test -s $(PLUGIN_DIST)/$$f || { echo "$(PLUGIN_DIST)/$$f is missing"; exit 1; }; done

# The one-command demo: synthetic extract -> key -> ingest -> project "wl" -> the HTTP API
# on 127.0.0.1:8080 with researcher, official and DPO tokens (printed, and in
# $(DEMO)/tokens.json). Ctrl-C stops it; running it again reuses $(DEMO).
demo: build
	$(BIN) demo --dir $(DEMO) --persons $(PERSONS)

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

# The query suite side by side with plain DuckDB and the DP peers (bench/RESULTS.md): the
# peers' virtual environments first (idempotent; VELO_BENCH_VENV, default
# ~/.cache/velo-bench/venv), then the suite at PEERS_PERSONS (datasets cached in
# ~/.cache/velo-bench). At scale: PEERS_PERSONS=4000000 PEERS_FLAGS="--full-persons 400000".
PEERS_PERSONS ?= 20000
PEERS_FLAGS   ?=
bench-peers:
	bash bench/peers/setup.sh
	$(GO) run ./bench/cmd/peerbench --persons $(PEERS_PERSONS) $(PEERS_FLAGS)

# Velo's synthesizers against SmartNoise Synth's (bench/README.md, "Side by side: synthetic data").
bench-synth:
	bash bench/peers/setup.sh snsynth
	$(GO) run ./bench/cmd/synthbench --persons $(PEERS_PERSONS) --snsynth-sampler sample

# Every fuzz target of FUZZ_PKGS for FUZZTIME each: one target per `go test` (Go fuzzes
# one at a time), listed with `go test -list`. Their seeds (f.Add and testdata/fuzz) also
# run in `go test`. Inputs that widen coverage go to Go's cache; a failing input is written
# to the package's testdata/fuzz/FuzzX: fix the code and commit the input with the fix.
# Go spends up to a minute minimizing each new input by default, which would swallow a
# short run: FUZZMINIMIZETIME bounds it.
FUZZTIME         ?= 10s
FUZZMINIMIZETIME ?= 5s
FUZZ_PKGS        ?= ./ingest ./ledger ./query

fuzz:
	@set -e; for pkg in $(FUZZ_PKGS); do \
	  for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "$(GO) test -run '^$$' -fuzz '^$$fn\$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin $(DEMO) $(PLUGIN_DIST)
