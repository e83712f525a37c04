#!/usr/bin/env bash
# Stop the server start.sh started on DATA_DIR (fast shutdown: clients are disconnected, nothing is lost).
#   stop.sh [--kill] [DATA_DIR]     --kill: immediate shutdown (a crash; recovery replays the WAL)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODE=fast
if [ "${1:-}" = "--kill" ]; then MODE=immediate; shift; fi
DATA_DIR="${1:-$HERE/run/data}"
BIN="$("$HERE/ensure.sh")"
[ -f "$DATA_DIR/postmaster.pid" ] || exit 0
if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA_DIR" -m "$MODE" -w stop >/dev/null
else
    "$BIN/pg_ctl" -D "$DATA_DIR" -m "$MODE" -w stop >/dev/null
fi
