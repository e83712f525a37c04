#!/usr/bin/env bash
# Start a single-node KRaft Kafka broker on 127.0.0.1 in the background and wait until it serves.
#
#   start.sh [DATA_DIR] [PORT] [CONTROLLER_PORT]     (defaults: deploy/kafka/run/broker 9092 9093)
#
# DATA_DIR receives server.properties, the Kafka log directory (logs/), broker.log and broker.pid.
# A fresh DATA_DIR is formatted; an existing one is reused (restart on the same data and ports).
# Exits 0 once a Metadata request succeeds; otherwise exits 1 and prints the broker log tail.
# Environment: KAFKA_HEAP (default -Xmx512m), KAFKA_START_TIMEOUT seconds (default 60),
# KAFKA_WATCH_PID (stop the broker when that process ends: test runs never leak a broker), PYTHON.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA_DIR="${1:-$HERE/run/broker}"
PORT="${2:-9092}"
CONTROLLER_PORT="${3:-9093}"
TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
PYTHON="${PYTHON:-python3}"
HEAP="${KAFKA_HEAP:--Xmx512m -Xms256m}"

mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
PID_FILE="$DATA_DIR/broker.pid"
LOG="$DATA_DIR/broker.log"
PROPS="$DATA_DIR/server.properties"

fail() {  # fail MESSAGE [no-log]
    echo "start.sh: $1" >&2
    if [[ -z "${2:-}" && -f "$LOG" ]]; then
        # The cause is usually an early ERROR line, followed by pages of shutdown noise.
        if grep -q -E '^\[[^]]*\] (ERROR|FATAL) |^Caused by: ' "$LOG"; then
            echo "---- first errors in $LOG ----" >&2
            grep -m 8 -E '^\[[^]]*\] (ERROR|FATAL) |^Caused by: ' "$LOG" | cut -c1-400 >&2
        fi
        echo "---- last 40 lines of $LOG ----" >&2
        tail -n 40 "$LOG" >&2
    fi
    exit 1
}

"$HERE/fetch.sh"

if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    fail "a broker is already running for $DATA_DIR (pid $(cat "$PID_FILE")); stop it with stop.sh first" no-log
fi

sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@LOG_DIR@|$DATA_DIR/logs|g" \
    "$HERE/server.properties.template" >"$PROPS"

# ':' cannot be put inside a quoted glob, so the class path is built once here.
CP="$HERE/lib/*"
if [[ ! -f "$DATA_DIR/logs/meta.properties" ]]; then
    # What `StorageTool random-uuid` prints (a URL-safe base64 UUID), without starting a second JVM. Like Kafka's
    # Uuid.randomUuid, never one that starts with '-' (1 in 64 would): the tool would read it as an option.
    cluster_id="$("$PYTHON" -c '
import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(cid)')"
    if ! java -cp "$CP" kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" --standalone \
            >"$DATA_DIR/format.log" 2>&1; then
        cat "$DATA_DIR/format.log" >&2
        fail "formatting $DATA_DIR/logs failed (output above)"
    fi
fi

echo "start.sh: starting Kafka on 127.0.0.1:$PORT (controller $CONTROLLER_PORT), data in $DATA_DIR" >&2
# shellcheck disable=SC2086  # HEAP holds several JVM flags on purpose
nohup java $HEAP -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    -cp "$CP" kafka.Kafka "$PROPS" >>"$LOG" 2>&1 </dev/null &
broker=$!
echo "$broker" >"$PID_FILE"

if [[ -n "${KAFKA_WATCH_PID:-}" ]]; then
    # Detached from our stdio so whoever captures this script's output is not kept waiting.
    nohup bash -c 'while kill -0 "$0" 2>/dev/null && kill -0 "$1" 2>/dev/null; do sleep 2; done
                   kill "$1" 2>/dev/null || true' "$KAFKA_WATCH_PID" "$broker" >/dev/null 2>&1 </dev/null &
fi

deadline=$((SECONDS + TIMEOUT))
while true; do
    if ! kill -0 "$broker" 2>/dev/null; then
        rm -f "$PID_FILE"
        fail "the broker process exited during start-up"
    fi
    if status="$("$PYTHON" "$HERE/probe.py" 127.0.0.1 "$PORT")"; then
        echo "start.sh: $status (pid $broker)" >&2
        exit 0
    fi
    if ((SECONDS >= deadline)); then
        kill -9 "$broker" 2>/dev/null || true
        rm -f "$PID_FILE"
        fail "no working broker on 127.0.0.1:$PORT after ${TIMEOUT}s (last probe: $status); killed it"
    fi
    sleep 0.5
done
