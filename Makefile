# sandboxd — build, test, run, benchmark. Everything runs as root on Debian 12.
SWIFT        ?= swift
PREFIX       ?= /usr/local
CONFIG       ?= debug
BUILD_FLAGS  ?= -c $(CONFIG)
APT_PACKAGES := libsystemd-dev libseccomp-dev bubblewrap pkg-config iproute2 libc6-dev gcc make curl
BIN          = $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path)

.PHONY: all build test deps run install bench-daemon bench-rhp bench-spawn bench-provision clean

all: build

# Installs the system packages the build and the tests need (missing ones only).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

test: deps
	$(SWIFT) build $(BUILD_FLAGS) --build-tests
	$(SWIFT) test $(BUILD_FLAGS) --skip-build

# RHP ping latency and pipelined throughput between two processes, beside the raw C ping-pong.
bench-rhp: deps
	$(SWIFT) build -c release --product bench-rhp
	cc -O2 -Wall -Wextra -o $$($(SWIFT) build -c release --show-bin-path)/rhp-pingpong bench/rhp-pingpong.c
	$$($(SWIFT) build -c release --show-bin-path)/bench-rhp

bench-provision: deps
	$(SWIFT) build -c release --product bench-provision
	$(SWIFT) build -c release --product example-runtime
	$$($(SWIFT) build -c release --show-bin-path)/bench-provision

# Payload (static) and the bare C clone+pivot_root+seccomp baseline, then the Swift bench (release).
bench-spawn: deps
	mkdir -p .build/bench
	cc -O2 -static -o .build/bench/spawn-payload bench/spawn-payload.c
	cc -O2 -o .build/bench/spawn-baseline bench/spawn-baseline.c -lseccomp
	$(SWIFT) build -c release --product bench-spawn
	$$($(SWIFT) build -c release --show-bin-path)/bench-spawn --payload .build/bench/spawn-payload \
		--baseline .build/bench/spawn-baseline $(BENCH_ARGS)

# sandboxd in the foreground with the development config (.run/), the example runtime provisioned.
run: build
	BIN="$(BIN)" ./scripts/run-dev.sh

# Binaries to $(PREFIX)/bin (sandboxd to sbin), the config to /etc/sandboxd/ (an existing one is kept).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)/etc/sandboxd
	install -m 0755 $(BIN)/example-runtime $(BIN)/sandbox-exec $(BIN)/sandboxctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BIN)/sandboxd $(DESTDIR)$(PREFIX)/sbin/
	test -e $(DESTDIR)/etc/sandboxd/sandboxd.yaml || install -m 0644 config/sandboxd.yaml $(DESTDIR)/etc/sandboxd/sandboxd.yaml

# Daemon figures over the API: provision→started (namespaces vs none), a burst of runtimes, idle CPU.
bench-daemon: deps
	$(SWIFT) build -c release --product sandboxd
	$(SWIFT) build -c release --product example-runtime
	$(SWIFT) build -c release --product bench-daemon
	$$($(SWIFT) build -c release --show-bin-path)/bench-daemon --bin $$($(SWIFT) build -c release --show-bin-path) $(BENCH_DAEMON_FLAGS)

clean:
	rm -rf .build .run
