#!/usr/bin/env bash
# Start a PostgreSQL server of our own on a data directory and a port of 127.0.0.1 (initialised on first use,
# with a database "newsradar" and trust authentication from loopback only): for tests, benchmarks and a
# one-machine try-out. Not a production setup: there, point state.dsn_env at your own server.
#   start.sh [DATA_DIR] [PORT]      (defaults: deploy/postgres/run/data, 55432)
# Env: PG_WATCH_PID (stop the server when that process ends: test runs never leak a server).
# As root, the server runs as the "postgres" user (initdb refuses root); the data directory is given to it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA_DIR="${1:-$HERE/run/data}"
PORT="${2:-55432}"
BIN="$("$HERE/ensure.sh")"

as_server() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$DATA_DIR"
    chmod 700 "$DATA_DIR"
    # The server user must be able to reach its directory: let it through (traverse, not list) each folder above.
    dir="$(dirname "$DATA_DIR")"
    while [ "$dir" != "/" ]; do
        runuser -u postgres -- test -x "$dir" || chmod o+x "$dir"
        dir="$(dirname "$dir")"
    done
fi
if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
    as_server "$BIN/initdb" -D "$DATA_DIR" -U newsradar --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi
as_server "$BIN/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 60 \
    -o "-p $PORT -k $DATA_DIR -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
if ! as_server "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U newsradar -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='newsradar'" | grep -q 1; then
    as_server "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U newsradar newsradar
fi
if [[ -n "${PG_WATCH_PID:-}" ]]; then
    nohup bash -c 'while kill -0 "$0" 2>/dev/null && [ -f "$1/postmaster.pid" ]; do sleep 2; done
                   [ -f "$1/postmaster.pid" ] && kill -INT "$(head -n 1 "$1/postmaster.pid")" 2>/dev/null || true' \
        "$PG_WATCH_PID" "$DATA_DIR" >/dev/null 2>&1 </dev/null &
fi
echo "postgresql://newsradar@127.0.0.1:$PORT/newsradar"
