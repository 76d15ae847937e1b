# Sourced by the example sweeps (examples/reg/run_checks.sh,
# examples/incremental/run_sweep.sh): starts a throw-away pendulum-server on
# HOME_DIR/pendulum.db and one pendulum-worker with SLOTS slots, exports
# PENDULUM_SERVER / PENDULUM_TOKEN (admin) for the CLI, and stops both on exit.
# Needs: SERVER WORKER CLI TRAINER HOME_DIR PORT SLOTS WORKER_NAME.
mkdir -p "$HOME_DIR"
DB=$HOME_DIR/pendulum.db

stop_local_pool() {
  kill "${WORKER_PID:-}" 2>/dev/null || true
  kill "${SERVER_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_local_pool EXIT

"$SERVER" token create --db "$DB" --user admin --role admin > "$HOME_DIR/admin.token"
"$SERVER" token create --db "$DB" --user "$WORKER_NAME" --role worker > "$HOME_DIR/worker.token"
"$SERVER" --db "$DB" --listen "127.0.0.1:$PORT" --artifacts "$HOME_DIR/artifacts" > "$HOME_DIR/server.log" 2>&1 &
SERVER_PID=$!
export PENDULUM_SERVER=127.0.0.1:$PORT
PENDULUM_TOKEN=$(cat "$HOME_DIR/admin.token")
export PENDULUM_TOKEN
for _ in $(seq 1 100); do
  "$CLI" workers > /dev/null 2>&1 && break
  sleep 0.1
done
PENDULUM_TOKEN=$(cat "$HOME_DIR/worker.token") "$WORKER" --server "127.0.0.1:$PORT" \
  --trainer "$TRAINER" --work-dir "$HOME_DIR/work" --slots "$SLOTS" > "$HOME_DIR/worker.log" 2>&1 &
WORKER_PID=$!
echo "home $HOME_DIR (server.log, worker.log, work/)"
