# sandboxd — build, test, run, benchmark. Everything runs as root on Debian 12.
SWIFT        ?= swift
PREFIX       ?= /usr/local
CONFIG       ?= debug
BUILD_FLAGS  ?= -c $(CONFIG)
APT_PACKAGES := libsystemd-dev libseccomp-dev bubblewrap pkg-config iproute2 libc6-dev gcc make curl systemd util-linux socat python3-venv zlib1g-dev libssl-dev prometheus
# systemd integration (make install-systemd): units, sysusers and journal catalog. Unit files under
# $(PREFIX)/lib/systemd/system are found by systemd for PREFIX=/usr/local and /usr.
UNITDIR      ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR  ?= $(PREFIX)/lib/sysusers.d
CATALOGDIR   ?= $(PREFIX)/lib/systemd/catalog
BIN          = $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path)

.PHONY: all build test test-burst deps run install uninstall install-systemd bench-daemon bench-hostile bench-rhp bench-spawn bench-provision bench-bundle clean fuzz fuzz-build contract

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

# 200 provisions at once with /v1/health probed meanwhile (p99 < 50 ms): alone, on a quiet machine.
test-burst: build
	$(SWIFT) build $(BUILD_FLAGS) --build-tests
	SANDBOXD_BURST_TESTS=1 $(SWIFT) test $(BUILD_FLAGS) --skip-build --filter ConcurrentProvisionTests

# libFuzzer harnesses (cbor, rhp-host, rhp-guest, http, config, elf), FUZZ_SECONDS each; own scratch path
# because everything is built with -sanitize=fuzzer,address. Fails on a crash, leak, timeout or OOM.
FUZZ_SECONDS ?= 60
fuzz-build: deps
	$(SWIFT) build --scratch-path .build-fuzz --product fuzz-sandboxd -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

# The API contract, checked by schemathesis against docs/openapi.yaml through a loopback bridge.
contract: build
	BIN="$(BIN)" ./scripts/contract.sh

# RHP ping latency and pipelined throughput between two processes, beside the raw C ping-pong; then the
# same ping without and with RHP metrics recorded (issue #15: at most 3 % slower).
bench-rhp: deps
	$(SWIFT) build -c release --product bench-rhp
	cc -O2 -Wall -Wextra -o $$($(SWIFT) build -c release --show-bin-path)/rhp-pingpong bench/rhp-pingpong.c
	$$($(SWIFT) build -c release --show-bin-path)/bench-rhp
	$(SWIFT) build -c release --product sandboxd
	$(SWIFT) build -c release --product sandboxd-spawner
	$(SWIFT) build -c release --product example-runtime
	$$($(SWIFT) build -c release --show-bin-path)/bench-rhp calls

bench-provision: deps
	$(SWIFT) build -c release --product bench-provision
	$(SWIFT) build -c release --product sandboxd-spawner
	$(SWIFT) build -c release --product example-runtime
	$$($(SWIFT) build -c release --show-bin-path)/bench-provision

# Payload (static) and the C baselines (full: the sandbox's setup work in straight C, which the goal ratio is
# judged on; minimal: clone+pivot_root+seccomp), then the Swift bench (release).
bench-spawn: deps
	mkdir -p .build/bench
	cc -O2 -static -o .build/bench/spawn-payload bench/spawn-payload.c
	cc -O2 -o .build/bench/spawn-baseline bench/spawn-baseline.c -lseccomp
	$(SWIFT) build -c release --product bench-spawn
	$(SWIFT) build -c release --product sandboxd-spawner
	$$($(SWIFT) build -c release --show-bin-path)/bench-spawn --payload .build/bench/spawn-payload \
		--baseline .build/bench/spawn-baseline $(BENCH_ARGS)

# Explode time of a 50 MB runtime bundle (fresh, re-verify, open+validate); BENCH_ARGS="MB RUNS".
bench-bundle: deps
	$(SWIFT) build -c release --product bench-bundle
	$$($(SWIFT) build -c release --show-bin-path)/bench-bundle $(BENCH_ARGS)

# sandboxd in the foreground with the development config (.run/), the example runtime provisioned.
run: build
	BIN="$(BIN)" ./scripts/run-dev.sh

# Binaries to $(PREFIX)/bin (sandboxd to sbin), the config to /etc/sandboxd/ (an existing one is kept).
install: build install-systemd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)/etc/sandboxd
	install -m 0755 $(BIN)/example-runtime $(BIN)/sandbox-exec $(BIN)/sandboxctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BIN)/sandboxd $(BIN)/sandboxd-spawner $(DESTDIR)$(PREFIX)/sbin/
	test -e $(DESTDIR)/etc/sandboxd/sandboxd.yaml || install -m 0644 config/sandboxd.yaml $(DESTDIR)/etc/sandboxd/sandboxd.yaml

# Daemon figures over the API: provision→started (namespaces vs none), a burst of runtimes, idle CPU;
# then the burst alone again with the minimal C RHP runtime (bench/minimal-runtime.c).
bench-daemon: deps
	$(SWIFT) build -c release --product sandboxd
	$(SWIFT) build -c release --product sandboxd-spawner
	$(SWIFT) build -c release --product example-runtime
	$(SWIFT) build -c release --product bench-daemon
	mkdir -p .build/bench
	cc -O2 -Wall -Wextra -static -o .build/bench/minimal-runtime bench/minimal-runtime.c
	$$($(SWIFT) build -c release --show-bin-path)/bench-daemon --bin $$($(SWIFT) build -c release --show-bin-path) $(BENCH_DAEMON_FLAGS)
	$$($(SWIFT) build -c release --show-bin-path)/bench-daemon --bin $$($(SWIFT) build -c release --show-bin-path) \
		--runtime $(CURDIR)/.build/bench/minimal-runtime --samples 0 --window 0 $(BENCH_DAEMON_FLAGS)

# Issue #11's attacks by the hostile C runtime (bench/hostile-runtime.c) against a release sandboxd: per
# attack, daemon RSS before/peak/after, an innocent runtime's ping p50/p99, daemon log lines and CPU,
# beside the same window without the attack. HOSTILE_WINDOW sets the seconds per window.
HOSTILE_WINDOW ?= 10
bench-hostile: deps
	$(SWIFT) build -c release --product sandboxd
	$(SWIFT) build -c release --product sandboxd-spawner
	$(SWIFT) build -c release --product bench-daemon
	mkdir -p .build/bench
	cc -O2 -Wall -Wextra -static -pthread -o .build/bench/hostile-runtime bench/hostile-runtime.c
	$$($(SWIFT) build -c release --show-bin-path)/bench-daemon --bin $$($(SWIFT) build -c release --show-bin-path) \
		--hostile $(CURDIR)/.build/bench/hostile-runtime --hostile-window $(HOSTILE_WINDOW)

# Units (ExecStart follows PREFIX), the sandboxd group and the journal catalog; without DESTDIR also
# creates the group, rebuilds the catalog database and reloads a running systemd.
install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(CATALOGDIR) $(DESTDIR)/etc/sandboxd
	sed 's|/usr/local/sbin/sandboxd|$(PREFIX)/sbin/sandboxd|' systemd/sandboxd.service > $(DESTDIR)$(UNITDIR)/sandboxd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sandboxd.service
	install -m 0644 systemd/sandboxd.socket $(DESTDIR)$(UNITDIR)/sandboxd.socket
	install -m 0644 systemd/sandboxd.sysusers $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf
	install -m 0644 systemd/sandboxd.catalog $(DESTDIR)$(CATALOGDIR)/sandboxd.catalog
	@if [ -z "$(DESTDIR)" ]; then \
		systemd-sysusers $(SYSUSERSDIR)/sandboxd.conf; \
		journalctl --update-catalog; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi

# Removes what `install` and `install-systemd` put in place; keeps /etc/sandboxd, the state directory
# (/var/lib/sandboxd) and the sandboxd group. Stop the service first (docs/operations.md).
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/example-runtime $(DESTDIR)$(PREFIX)/bin/sandbox-exec $(DESTDIR)$(PREFIX)/bin/sandboxctl
	rm -f $(DESTDIR)$(PREFIX)/sbin/sandboxd
	rm -f $(DESTDIR)$(UNITDIR)/sandboxd.service $(DESTDIR)$(UNITDIR)/sandboxd.socket
	rm -f $(DESTDIR)$(SYSUSERSDIR)/sandboxd.conf $(DESTDIR)$(CATALOGDIR)/sandboxd.catalog
	@if [ -z "$(DESTDIR)" ]; then \
		journalctl --update-catalog; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi

clean:
	rm -rf .build .build-fuzz .run
