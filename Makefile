# memcluster: a memcached-compatible distributed cache.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 30s

.PHONY: all build image image-offline run test fmt-check vet bench bench-memory bench-resources bench-cluster bench-forward soak fuzz clean

all: build

# Static binaries (CGO_ENABLED=0: no libc, no loader), which run as they are
# on any Linux of the same architecture and in an image FROM scratch.
# -buildvcs=auto: stamp the commit, for -V, even where GOFLAGS turns it off.
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=auto -o $(BIN)/ ./cmd/...

# The container image, IMAGE, from Dockerfile: Go's image compiles the
# static binary, which then runs alone as uid 65532 on distroless/static.
# Its two base images come from registries. With podman or buildah (no
# daemon needed), else docker; CONTAINER_BUILD chooses.
IMAGE           ?= localhost/memcluster:dev
CONTAINER_BUILD ?= $(shell if command -v podman >/dev/null; then echo podman build; \
	elif command -v buildah >/dev/null; then echo buildah build; \
	elif command -v docker >/dev/null; then echo docker build; fi)

image:
	@test -n "$(CONTAINER_BUILD)" || { echo "make image: no podman, buildah or docker (apt-get install podman)"; exit 1; }
	$(CONTAINER_BUILD) -t $(IMAGE) -f Dockerfile .

# The same image with no registry: Dockerfile.scratch, FROM scratch over
# bin/memcluster, with bin/ as the build context.
image-offline: build
	@test -n "$(CONTAINER_BUILD)" || { echo "make image-offline: no podman, buildah or docker (apt-get install podman)"; exit 1; }
	$(CONTAINER_BUILD) -t $(IMAGE) -f Dockerfile.scratch $(BIN)

# One node with memcached's defaults, on 127.0.0.1:11211.
run: build
	./$(BIN)/memcluster -l 127.0.0.1 -p 11211

# gofmt, vet, then every test (unit, fuzz seeds, end to end with real clients)
# under the race detector; then, alone so that its busy loops slow no other
# test, a minute of saturated CPUs under which no healthy node may be
# declared dead.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 7m ./...
	MEMCLUSTER_SATURATION_TEST=60s $(GO) test -count=1 -timeout 3m \
		-run '^TestProcessClusterUnderCPUSaturation$$' -v ./internal/clustertest/

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Go benchmarks with allocations, then memcached and the node side by side:
# throughput under memcaslap, CPU per request and tail latency under mcload
# latency at 100 B to 500 KiB values and over TLS (some seven minutes more), then (about two minutes) memory per item,
# overfill, hit ratio and the node's GC. What connections cost is
# bench-resources, below.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./protocol/ ./node/... ./ring/
	./scripts/bench.sh
	./scripts/bench-memory.sh

# The memory, overfill, hit-ratio and GC measurements alone.
bench-memory: build
	./scripts/bench-memory.sh

# memcached and the node side by side (about two minutes): resident memory
# per idle connection (10,000 of them), per connection after 1,024 of them
# each set and got a 1 MiB item, and under a tenfold overfill of -m 64 with
# 100 B, 10 KiB and 500 KiB values.
bench-resources: build
	./scripts/bench-resources.sh

# What a change of membership costs a cache-aside client on three nodes
# (about twenty minutes): failed requests and extra misses through a
# scale-out, a rolling restart, a graceful scale-in and a kill -9, with
# ring.Client and the drain on, and with both off; then a simulated fleet
# of 100 nodes: time to agree after changes, and gossip bytes per node.
bench-cluster: build
	./scripts/bench-cluster.sh

# What forwarding costs (about a minute): three nodes with --forward,
# gets sent to a key's owner and, in alternating rounds, to another node
# that forwards them: throughput, p50, p99 and each node's CPU per get.
bench-forward: build
	$(GO) build -o $(BIN)/mcforwardbench ./internal/cmd/mcforwardbench
	$(BIN)/mcforwardbench -bin $(BIN)/memcluster

# One node at -m 64 for DURATION (default 10m; make soak DURATION=60s for a
# quick look) under mixed load with stalled, slow and abusive clients and
# connection churn: PASS if its RSS stays within 1.1 x -m + 64 MiB and a
# well-behaved client's p99 within twice its unloaded value; exits 1 on FAIL.
soak: build
	./scripts/soak.sh

# Every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		dir=$$(dirname $$f); \
		for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
			echo "== $$dir $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$dir; \
		done; \
	done

clean:
	rm -rf $(BIN)
