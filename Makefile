# pktengine — see README.md.
GO       ?= go
PKGS     ?= ./...
# Fuzzing time per target: brief in `make test`, longer in `make fuzz`.
FUZZTIME_TEST ?= 3s
FUZZTIME      ?= 60s

.PHONY: all build deps test check unit fuzz-brief fuzz bench bench-lab robust demo clean

all: build

build:
	$(GO) build -o bin/pktengine ./cmd/pktengine

# The programs the tests, the demo and the harness run (ip, tcpdump, tshark,
# trafgen, ...): installed with apt-get if missing and root, else named.
deps:
	./scripts/deps.sh

# The README's test command: the programs it needs, formatting, vet, the
# unit and lab tests under the race detector, and a few seconds of every
# fuzz target.
test: deps check unit fuzz-brief

check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) vet $(PKGS)
	GOARCH=386 $(GO) vet ./proto ./frame ./bpf ./reassembly

unit:
	$(GO) test -race -count=1 -timeout 8m $(PKGS)
	$(GO) test -count=1 -tags purego ./proto

fuzz-brief:
	./scripts/fuzz.sh $(FUZZTIME_TEST)

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The robustness suite at full length: a 60 s overload of the live engine
# (make test runs it for 15 s), a 60 s flood of random fragments with the
# resident memory checked flat (make test: 3 s), and SIGTERM under load.
robust:
	PKTENGINE_ROBUST_OVERLOAD=60s PKTENGINE_ROBUST_FRAGFLOOD=60s $(GO) test -race -count=1 -timeout 15m -v ./engine/robust
	$(GO) test -race -count=1 -run TestServeSIGTERMUnderLoad -v ./cmd/pktengine

# The main job on the built-in lab: a two-namespace lab, the echo responder in
# one namespace, a kernel UDP client in the other, `pktengine stat`, teardown.
demo: deps build dnsd
	./bin/pktengine demo
	@echo
	@echo "== side by side: pktengine echo against kernel UDP (short run; make bench-lab for the full one)"
	./bin/pktengine bench --demo
	@echo
	@echo "== side by side: Knot DNS against examples/dnsd (short run; make bench-dns for the full one)"
	./bin/pktengine bench --dns --demo

# The full benchmark harness (about 5 minutes): RFC 2544 zero-loss rates and
# latency of pktengine against kernel UDP, the generator against trafgen.
bench-lab: build
	./bin/pktengine bench --out docs/bench/results

.PHONY: dnsd bench-dns

# examples/dnsd, the DNS responder the DNS benchmark runs (pktengine bench
# --dns finds it beside bin/pktengine).
dnsd:
	$(GO) build -o bin/dnsd ./examples/dnsd

# The DNS benchmark (about 8 minutes): Knot DNS on kernel UDP and in XDP
# mode against examples/dnsd on a kernel socket, on the engine's
# net.PacketConn and inline; highest queries/s at <= 0.1 % loss, latency,
# CPU and allocations per query (docs/bench/dns.md).
bench-dns: build dnsd
	./bin/pktengine bench --dns --out docs/bench/results

clean:
	rm -rf bin
