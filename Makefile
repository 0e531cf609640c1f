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

# The README's test command: vet, the whole suite, and the race detector on the packages
# with concurrency (ingest pipeline, ledger, query engine).
test: vet
	$(GO) test ./...
	$(GO) test -race -short $$($(GO) list ./ingest ./ledger ./query ./dp 2>/dev/null)

# Velo's main job on an embedded default: synthetic extract -> key -> ingest -> risk ->
# a project with a privacy budget -> the waiting-list questions as DP queries -> the
# ledger verified.
Q = $(BIN) query --data $(DEMO)/data --state $(DEMO)/state --project wl
demo: build
	rm -rf $(DEMO)/synth $(DEMO)/data $(DEMO)/state
	mkdir -p $(DEMO)
	$(BIN) synth --persons $(PERSONS) --seed 7 --bundles 20 --out $(DEMO)/synth
	test -f $(DEMO)/pseudonymization.key || $(BIN) keys gen --out $(DEMO)/pseudonymization.key
	$(BIN) ingest --key $(DEMO)/pseudonymization.key --opt-out $(DEMO)/synth/optout.txt --period 2024-01..2025-12 --out $(DEMO)/data $(DEMO)/synth
	$(BIN) risk --data $(DEMO)/data
	$(BIN) project create --state $(DEMO)/state --id wl --purpose "waiting-list reduction, region by region" \
	  --legal-basis "art. 2-sexies c.1-bis Codice privacy (L. 56/2024)" --allow booking --allow person:birth_year,sex,region \
	  --epsilon-budget 10 --delta-budget 1e-5 --default-epsilon 0.5 --max-epsilon-per-query 2 --approver "DPO demo"
	$(Q) --epsilon 1 "SELECT region, AVG(CAST(within_target AS INTEGER)) AS share_within_target, COUNT(*) AS bookings FROM booking WHERE first_access GROUP BY region ORDER BY region"
	$(Q) --epsilon 1 "SELECT service_code, MEDIAN(wait_days) AS median_wait FROM booking WHERE first_access AND priority IS NOT NULL GROUP BY service_code ORDER BY median_wait DESC"
	$(Q) "SELECT WITH DIFFERENTIAL_PRIVACY OPTIONS(epsilon = 1) date_trunc('quarter', d_contact) AS quarter, AVG(CAST(within_target AS INTEGER)) AS share FROM booking GROUP BY quarter ORDER BY quarter"
	$(BIN) project show --state $(DEMO)/state
	$(BIN) ledger verify --state $(DEMO)/state

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./bench/...

clean:
	rm -rf bin $(DEMO)
