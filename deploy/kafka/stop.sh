#!/usr/bin/env bash
# Stop the broker start.sh started for DATA_DIR, then delete DATA_DIR.
#
#   stop.sh [--keep] [--kill] [DATA_DIR]     (default DATA_DIR: deploy/kafka/run/broker)
#
# --keep  keep DATA_DIR (to start the same broker again on the same data: restarts, fault tests)
# --kill  SIGKILL at once instead of a clean shutdown (simulates a crash)
# A clean shutdown gets KAFKA_STOP_TIMEOUT seconds (default 30) before SIGKILL.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
keep=0
signal=TERM
while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --keep) keep=1 ;;
        --kill) signal=KILL ;;
        *) echo "stop.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
DATA_DIR="${1:-$HERE/run/broker}"
TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

if [[ ! -d "$DATA_DIR" ]]; then
    echo "stop.sh: $DATA_DIR does not exist; nothing to stop" >&2
    exit 0
fi
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
PID_FILE="$DATA_DIR/broker.pid"

if [[ -f "$PID_FILE" ]]; then
    pid="$(cat "$PID_FILE")"
    # Only ever signal the broker of this DATA_DIR, never a process that merely reused the pid.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $DATA_DIR/server.properties"; then
        kill "-$signal" "$pid"
        deadline=$((SECONDS + TIMEOUT))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                echo "stop.sh: broker $pid still running after ${TIMEOUT}s; sending SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            sleep 0.2
        done
    fi
    rm -f "$PID_FILE"
fi

if ((keep == 0)); then
    # Refuse to delete a folder start.sh did not make.
    if [[ -f "$DATA_DIR/server.properties" ]]; then
        rm -rf "$DATA_DIR"
    else
        echo "stop.sh: $DATA_DIR has no server.properties, not deleting it" >&2
        exit 1
    fi
fi
