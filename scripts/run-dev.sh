#!/usr/bin/env bash
# `make run`: sandboxd in the foreground with the development config (everything under .run/), the
# example runtime provisioned in the namespace sandbox (no /proc, JSON logs so levels survive), and how to
# talk to it. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$(swift build --show-bin-path)}
RUN="$PWD/.run"
SOCKET="$RUN/sandboxd.sock"
CTL=("$BIN/sandboxctl" --socket "$SOCKET")
# The example runtime's namespace (any 64 hex characters will do).
EXAMPLE_ID=8000000000000000000000000000000000000000000000000000000000000001

mkdir -p "$RUN"
"$BIN/sandboxd" --config config/sandboxd.dev.yaml --socket "$SOCKET" \
    --state-dir "$RUN/state" --runtime-dir "$RUN/runtimes" &
DAEMON=$!
# Ctrl-C reaches sandboxd too (same process group); either way wait for its graceful exit.
trap 'kill -TERM "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null; exit 0' INT TERM

for _ in $(seq 100); do
    if "${CTL[@]}" health >/dev/null 2>&1; then break; fi
    if ! kill -0 "$DAEMON" 2>/dev/null; then wait "$DAEMON"; exit $?; fi
    sleep 0.1
done

if ! "${CTL[@]}" status example >/dev/null 2>&1; then
    "${CTL[@]}" provision --name example --id "$EXAMPLE_ID" --executable "$BIN/example-runtime" \
        --sandbox namespaces --arg --version --arg 1.0.0 --arg --log-json || true
fi
sleep 0.5
"${CTL[@]}" list || true

cat <<HELP

sandboxd is running in the foreground (pid $DAEMON); Ctrl-C stops it and its runtimes.
Talk to it from another terminal:
  $BIN/sandboxctl --socket $SOCKET list
  $BIN/sandboxctl --socket $SOCKET status example
  $BIN/sandboxctl --socket $SOCKET ping example
  $BIN/sandboxctl --socket $SOCKET events --follow
  $BIN/sandboxctl --socket $SOCKET logs example -f
  curl --unix-socket $SOCKET http://localhost/v1/runtimes
  curl --unix-socket $SOCKET -X POST http://localhost/v1/runtimes/example/ping
Desired state lives in $RUN/state (rm -rf .run to start afresh).

HELP
wait "$DAEMON"
