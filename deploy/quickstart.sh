#!/usr/bin/env bash
# The README's "run it" command: installs missing Debian packages, builds,
# starts pendulum-server on the embedded SQLite default and one local
# pendulum-worker, submits a demo run and follows it live until it finishes.
#   deploy/quickstart.sh [SPEC.yaml]     (default: examples/mlp_fashion_mnist.yaml)
# Env: BUILD_DIR (default build), PENDULUM_HOME (default ./pendulum-data),
#      PENDULUM_PORT (default 7070), KEEP_RUNNING=1 to leave server and worker up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/install_deps.sh

BUILD_DIR=${BUILD_DIR:-build}
HOME_DIR=${PENDULUM_HOME:-$ROOT/pendulum-data}
PORT=${PENDULUM_PORT:-7070}
SPEC=${1:-examples/mlp_fashion_mnist.yaml}
mkdir -p "$HOME_DIR"

echo "==> building (this takes a while the first time)"
# Same build dir and type as tests/run.sh, so either command reuses the other's objects.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target pendulum-server pendulum-worker pendulum-train pendulum

BIN=$BUILD_DIR
SERVER=$BIN/server/pendulum-server
WORKER=$BIN/worker/daemon/pendulum-worker
CLI=$BIN/client/pendulum
DB=$HOME_DIR/pendulum.db

cleanup() {
  if [ "${KEEP_RUNNING:-0}" = "1" ]; then
    echo "==> leaving server (pid $SERVER_PID) and worker (pid $WORKER_PID) running"
    return
  fi
  echo "==> stopping worker and server"
  kill "${WORKER_PID:-}" "${SERVER_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Tokens are shown once and stored hashed; keep them in the data dir for reuse.
if [ ! -s "$HOME_DIR/admin.token" ]; then
  "$SERVER" token create --db "$DB" --user admin --role admin > "$HOME_DIR/admin.token"
  "$SERVER" token create --db "$DB" --user worker-local --role worker > "$HOME_DIR/worker.token"
fi

echo "==> starting pendulum-server on 127.0.0.1:$PORT (db $DB, logs $HOME_DIR/server.log)"
"$SERVER" --db "$DB" --listen "127.0.0.1:$PORT" --artifacts "$HOME_DIR/artifacts" \
  --metrics-listen "127.0.0.1:$((PORT + 1))" > "$HOME_DIR/server.log" 2>&1 &
SERVER_PID=$!
export PENDULUM_SERVER=127.0.0.1:$PORT
export PENDULUM_TOKEN=$(cat "$HOME_DIR/admin.token")
for _ in $(seq 1 100); do
  "$CLI" workers >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$HOME_DIR/server.log"; exit 1; }
  sleep 0.1
done

echo "==> starting pendulum-worker (work dir $HOME_DIR/work, logs $HOME_DIR/worker.log)"
PENDULUM_TOKEN=$(cat "$HOME_DIR/worker.token") "$WORKER" --server "127.0.0.1:$PORT" \
  --work-dir "$HOME_DIR/work" --slots 1 > "$HOME_DIR/worker.log" 2>&1 &
WORKER_PID=$!

echo "==> submitting $SPEC"
RUN_ID=$("$CLI" submit "$SPEC")
echo "run $RUN_ID submitted; following it (Ctrl-C stops following, not the run)"
"$CLI" watch "$RUN_ID"
"$CLI" show "$RUN_ID"
echo "==> last metric points:"
"$CLI" metrics "$RUN_ID" --format csv | tail -n 5
echo "Prometheus metrics: curl http://127.0.0.1:$((PORT + 1))/metrics"
