#!/usr/bin/env bash
# `make contract` / CI: schemathesis checks docs/openapi.yaml against a real sandboxd (all checks, the
# stateful phase included) through a loopback-only TCP bridge to the daemon's UNIX socket.
# CONTRACT_SECONDS bounds the run (--max-time); CONTRACT_EXAMPLES the cases per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$(swift build --show-bin-path)}
SCHEMATHESIS_VERSION=4.32.5
VENV=${CONTRACT_VENV:-.build/contract-venv}
PORT=${CONTRACT_PORT:-18777}
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK=$(mktemp -d /tmp/sandboxd-contract-XXXXXX)
chmod 0711 "$WORK"
SOCK="$WORK/s.sock"
cat >"$WORK/sandboxd.yaml" <<YAML
socket: {path: $SOCK}
state_directory: $WORK/state
runtime_directory: $WORK/rt
sandbox: {default_backend: namespaces, allow_none: false}
# Runtimes the run provisions (/bin/true: never connects) retry slowly, to keep the machine quiet.
supervision: {stop_grace_period: 1s, restart_initial_interval: 2s, restart_max_interval: 30s}
YAML
"$BIN/sandboxd" --config "$WORK/sandboxd.yaml" --log-target console --log-level warning >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
socat TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$SOCK" &
BRIDGE=$!
cleanup() {
    kill "$BRIDGE" 2>/dev/null || true
    kill -TERM "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do
    curl -fsS --unix-socket "$SOCK" http://localhost/v1/health >/dev/null 2>&1 && break
    kill -0 "$DAEMON" 2>/dev/null || { cat "$WORK/daemon.log"; exit 1; }
    sleep 0.1
done

status=0
PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=contract_hooks \
    "$VENV/bin/st" --config-file scripts/schemathesis.toml run docs/openapi.yaml --url "http://127.0.0.1:$PORT" --checks all \
    --max-time "${CONTRACT_SECONDS:-120}" --max-examples "${CONTRACT_EXAMPLES:-50}" \
    --request-timeout 20 --workers 1 --no-color --seed "${CONTRACT_SEED:-1}" "$@" 2>&1 | tee "$WORK/st.log" || status=$?
# The summary's last line names failures and errors; count them even if st's exit status does not.
if tail -3 "$WORK/st.log" | grep -qE '[0-9]+ (failure|error)'; then status=1; fi
if [ $status -ne 0 ]; then
    echo "--- daemon log (last 30 lines)"; tail -30 "$WORK/daemon.log"
fi
exit $status
