# gomu build, test and benchmark entry points. `make test` and `make run` are
# all a fresh machine needs: both install their own dependencies first.

GO       ?= go
GOFLAGS  ?=
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN      := bin

# Debian packages the build and the tests need. apt runs only for the ones
# that are missing, so `make deps` is cheap when everything is there.
APT_PKGS := libibverbs-dev memcached redis-server redis-tools libmemcached-tools iproute2 nftables etcd-server tcl

.PHONY: all deps build vet test test-short test-rdma build-rdma bench run compare clean

all: build

deps:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all present"; fi
	@command -v gcc >/dev/null || { echo "deps: gcc is needed for cgo (apt-get install gcc)"; exit 1; }
	$(GO) mod download

build:
	$(GO) build $(GOFLAGS) ./...
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/... ./apps/redis-replicated/cmd/... ./apps/memcached-replicated/cmd/... ./apps/orderbook/cmd/...

build-rdma:
	$(GO) build $(GOFLAGS) -tags rdma ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags rdma,ibvfake ./verbs/... ./verbsrpc/...
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }

# The whole suite: unit, conformance (shm, tcp and the cgo ibv provider on
# its fake libibverbs), multi-process and fault tests, race detector on.
test: deps vet
	@# The engine's fault and healing tests judge detection and recovery by
	@# the real clock: on two cores they run alone first, not beside the
	@# apps' multi-process tests, whose load starved them now and then.
	$(GO) test $(GOFLAGS) -race -count=1 ./consensus/...
	$(GO) test $(GOFLAGS) -race -count=1 $$($(GO) list ./... | grep -v '/gomu/consensus')
	@# The race detector allocates, so the zero-allocation checks of the hot
	@# paths skip under -race: run them once more without it.
	$(GO) test $(GOFLAGS) -count=1 -run 'Alloc' ./...
	@# Under -race the 100 MB Redis value shrinks to 16 MB: once at full size.
	$(GO) test $(GOFLAGS) -count=1 -run 'TestLargeValue$$' ./apps/redis-replicated/internal/server/
	$(GO) test $(GOFLAGS) -race -count=1 -tags rdma,ibvfake ./verbs/... ./verbsrpc/...
	$(MAKE) --no-print-directory build-rdma
	cd bench/peers && $(GO) vet ./... && $(GO) test $(GOFLAGS) -count=1 ./...
	$(MAKE) --no-print-directory faults-short

# Fast inner loop: skips the slow multi-process and fault tests.
test-short:
	$(GO) test $(GOFLAGS) -short ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./verbs/...
	$(GO) test -run '^$$' -bench . -benchmem -tags rdma,ibvfake ./verbs/ibv

# The main job: Mu's standalone benchmarks on a local 3-replica shm cluster
# (throughput, then latency with its dump-st-64-1.txt; a million commands
# each, a few seconds apiece), then one-sided write latency between two
# processes on the shm provider beside a bare shared-memory ping-pong.
run: deps build
	$(BIN)/main-st --local 64 1
	$(BIN)/main-st-lat --local 64 1
	$(BIN)/verbs-lat --local --transport shm --size 64 --iters 200000

# gomu and a peer side by side on one workload (64 B, 1 outstanding, 3
# processes of this machine, storage in memory): main-st-lat on shm and on
# tcp, then etcd raft over loopback TCP (bench/peers, its own module, so
# etcd's dependencies stay out of gomu's). Prints a table of p50/p99 and
# commands/s; the last line is
# `compare gomu_shm_p50_ns=<a> gomu_tcp_p50_ns=<b> etcd_raft_p50_ns=<c>`.
# About a minute on a loaded 2-core machine; COMPARE_FLAGS passes more
# flags to bench/peers/cmd/compare (e.g. --gomu-flag=--profile=fast).
COMPARE_COUNT ?= 20000
COMPARE_FLAGS ?=
compare: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/main-st-lat
	cd bench/peers && $(GO) build $(GOFLAGS) -o $(CURDIR)/$(BIN)/ ./cmd/etcd-raft-lat ./cmd/compare
	$(BIN)/compare --count $(COMPARE_COUNT) $(COMPARE_FLAGS) 64 1

clean:
	rm -rf $(BIN)
	rm -rf /dev/shm/gomu-verbs-lat-*

# redis-server-replicated beside Debian's redis-server under redis-benchmark
# (-t set,get; -c 1, then -c 50 -P 16): a local 3-replica cluster, the same
# server standalone, and plain Redis; prints a table and, last, the
# headline line `bench-redis replicated_rps=… redis_rps=… replicated_p50_us=… redis_p50_us=…`.
.PHONY: bench-redis
bench-redis: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./apps/redis-replicated/cmd/...
	$(BIN)/bench-redis --server $(BIN)/redis-server-replicated

# Redis 7.0.15's own test suite (from Debian's source package, fetched once
# into SUITE_DIR) against Debian's redis-server and against
# redis-server-replicated, unit by unit; ends with
# `redis-suite: units=… redis_ok=… gomu_ok=… ratio=…% gomu_units_aborted=…`.
# SUITE_MODE=cluster runs ours as a 3-replica --local cluster, against its
# leader. Not part of make test: it needs the network once and takes ~10 minutes.
.PHONY: redis-suite
redis-suite: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./apps/redis-replicated/cmd/redis-server-replicated
	apps/redis-replicated/redis-suite.sh $(CURDIR)/$(BIN)/redis-server-replicated $(SUITE_UNITS)

# memcached-replicated beside Debian's memcached: a local 3-replica cluster,
# the same server standalone, and plain memcached, each under memcslap
# (set, get, and both in the binary protocol), memcaslap (9 gets to 1 set,
# 16 connections) and memcached-puts-only/-gets-only (16 B keys, 32 B
# values); about a minute. Prints a table and, last, the headline line
# `bench-memcached replicated_ops=… memcached_ops=… ratio=… replicated_p50_us=… standalone_p50_us=… memcached_p50_us=…`.
# BENCH_MEMCACHED_FLAGS passes more flags (e.g. --requests 50000).
BENCH_MEMCACHED_FLAGS ?=
.PHONY: bench-memcached
bench-memcached: deps
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./apps/memcached-replicated/cmd/...
	$(BIN)/bench-memcached --server $(BIN)/memcached-replicated $(BENCH_MEMCACHED_FLAGS)

# The order book exchange (Mu's Liquibook demo): orderbook-server standalone
# beside a local 3-replica cluster (--profile fast --poll yield) under one
# trader (orders of a mix of limits, crosses, markets, cancels, replaces,
# IOC, FOK and stops), then a run where the leader is paused through its
# fifo and one where it is killed and restarted. Prints a p50/p99/p99.9
# table with the p50 difference (target ≤ 1.5 µs), the stalls around each
# fault, and writes orderbook-pause.png and orderbook-kill.png (latency
# over time, the fault marked) with their timelines to BENCH_ORDERBOOK_DIR;
# the last line is `bench-orderbook standalone_p50_ns=… replicated_p50_ns=…
# delta_p50_ns=… pause_stall_ms=… kill_stall_ms=… lost=… doubled=…`.
# About half a minute; BENCH_ORDERBOOK_FLAGS passes more flags.
BENCH_ORDERBOOK_DIR   ?= .
BENCH_ORDERBOOK_FLAGS ?=
.PHONY: bench-orderbook
bench-orderbook: deps
	@mkdir -p $(BIN) $(BENCH_ORDERBOOK_DIR)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./apps/orderbook/cmd/...
	$(BIN)/bench-orderbook --server $(BIN)/orderbook-server --png-dir $(BENCH_ORDERBOOK_DIR) $(BENCH_ORDERBOOK_FLAGS)

# Several hosts on this machine (root): one network namespace per host on a
# bridge (internal/testbed). testbed-up prints each host's address and how
# to run a program there; testbed-down removes it and anything a crashed
# run left. TESTBED_FLAGS passes --name, --hosts, --subnet.
TESTBED_FLAGS ?=
.PHONY: testbed-up testbed-down
testbed-up:
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/testbed
	$(SUDO) $(BIN)/testbed up $(TESTBED_FLAGS)
testbed-down:
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/testbed
	$(SUDO) $(BIN)/testbed down $(TESTBED_FLAGS)

# The fault runner (internal/faults, cmd/faults): gomu's replicated Redis
# under each fault of the catalogue (`bin/faults list`) on the leader and
# on a follower, with the key-value workload's history checked for
# linearizability, lost writes counted and digests compared; a CSV and a
# PNG per scenario in FAULTS_DIR. faults-short is CI's check: every fault
# once on the leader, a few seconds each, locally (shm) and, as root, on a
# netns test bed (tcp); about two minutes, each run ending with the line
# `faults-short: scenarios=… ops=… linearizability_violations=0 undecided=0 lost_writes=0 …`.
# It fails on a violation, an undecided history, a lost write or an
# error; replicas whose state does not become the leader's within a
# minute are reported with what each said and restarted (faults run, and
# make faults, fail on them).
# faults is the full run, gomu then etcd on the same test bed
# (bench/peers/cmd/faults-etcd); lease is the lease workload against both.
# The order book (apps/orderbook/cmd/orderbook-faults) follows in
# faults-short and faults: orderbook-server replicas under the same
# faults, orderbook-trader's traders as the workload, judged exactly-once
# (every acknowledged order applied once: lost_orders=0 doubled_orders=0)
# with equal digests; faults-short runs it locally only (about a minute
# more), faults on both environments. Its files go to FAULTS_DIR/orderbook.
FAULTS_DIR   ?= faults-out
FAULTS_FLAGS ?=
.PHONY: faults-bins faults-short faults lease
faults-bins:
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/faults ./apps/redis-replicated/cmd/redis-server-replicated \
	  ./apps/orderbook/cmd/orderbook-faults ./apps/orderbook/cmd/orderbook-server ./apps/orderbook/cmd/orderbook-trader
	cd bench/peers && $(GO) build $(GOFLAGS) -o $(CURDIR)/$(BIN)/ ./cmd/faults-etcd
faults-short: faults-bins
	$(SUDO) $(BIN)/faults short --bin gomu=$(CURDIR)/$(BIN)/redis-server-replicated --out $(FAULTS_DIR) $(FAULTS_FLAGS)
	$(SUDO) $(BIN)/orderbook-faults short --env local --bin orderbook=$(CURDIR)/$(BIN)/orderbook-server --out $(FAULTS_DIR)/orderbook $(FAULTS_FLAGS)
faults: deps faults-bins
	$(SUDO) $(BIN)/faults-etcd run --bin gomu=$(CURDIR)/$(BIN)/redis-server-replicated --systems gomu,etcd --env local,netns --out $(FAULTS_DIR) $(FAULTS_FLAGS)
	$(SUDO) $(BIN)/orderbook-faults run --bin orderbook=$(CURDIR)/$(BIN)/orderbook-server --env local,netns --out $(FAULTS_DIR)/orderbook $(FAULTS_FLAGS)
lease: deps faults-bins
	$(SUDO) $(BIN)/faults-etcd lease --bin gomu=$(CURDIR)/$(BIN)/redis-server-replicated --systems gomu,etcd --env netns --out $(FAULTS_DIR) $(FAULTS_FLAGS)

# Latency and throughput against the number of replicas (Electrode's
# scenarios): main-st-lat (1 outstanding) and main-st (16 outstanding,
# median of 3 runs) on 3, 5 and 7 replicas, on shm (--local) and, as root,
# on tcp across a test bed of network namespaces (a host per replica, one
# for Debian's memcached as registry); relaxed profile, sleep polling.
# Prints a table (p50/p99/p99.9 µs, commands/s, ratios to 3 replicas),
# writes bench-sizes.csv and bench-sizes.png to BENCH_SIZES_DIR; the last
# line is `bench-sizes shm_p50_us=3:…,5:…,7:… tcp_p50_us=… shm_ops=… tcp_ops=…`.
# About 2–3 minutes on 2 cores; BENCH_SIZES_FLAGS passes more flags
# (e.g. --sizes 3,5 --count 100000 --tcp-count 10000).
BENCH_SIZES_DIR   ?= .
BENCH_SIZES_FLAGS ?=
.PHONY: bench-sizes
bench-sizes: deps
	@mkdir -p $(BIN) $(BENCH_SIZES_DIR)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/main-st ./cmd/main-st-lat ./cmd/bench-sizes
	$(SUDO) $(BIN)/bench-sizes --main-st $(BIN)/main-st --main-st-lat $(BIN)/main-st-lat --out-dir $(BENCH_SIZES_DIR) $(BENCH_SIZES_FLAGS)

# Container images for Mu's deployment, one replica per container plus a
# memcached container (deploy/: Dockerfile, Dockerfile.registry,
# compose.yaml). No image is pulled: deploy/image.sh debootstraps a Debian
# base, adds this machine's Go, builds with `podman build --isolation
# chroot`, then checks the images by mounting them and running their
# binaries in a chroot (each --help, a --local 3 shm cluster, a tcp
# cluster beside the registry image's memcached). Root; about 7 minutes
# cold, seconds when cached; not part of make test (it downloads a Debian
# root).
.PHONY: image
image:
	@command -v podman >/dev/null && command -v debootstrap >/dev/null || { \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends podman debootstrap; }
	$(SUDO) bash deploy/image.sh all
