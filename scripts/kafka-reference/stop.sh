#!/usr/bin/env bash
# Stop reference Kafka brokers started by start.sh.
#
#   scripts/kafka-reference/stop.sh              # every broker start.sh started (from .tmp/kafka-ref/pids)
#   scripts/kafka-reference/stop.sh <dataDir>    # only the broker using <dataDir>
#   scripts/kafka-reference/stop.sh --pid <pid>  # only that pid (must be a kafka.Kafka we started)
#
# Sends SIGTERM (controlled shutdown), waits up to KAFKA_STOP_TIMEOUT (30s), then SIGKILL.
# Only pids recorded by start.sh whose command line is kafka.Kafka are signalled.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
REF_DIR="${KAFKA_REF_DIR:-$REPO/.tmp/kafka-ref}"
PIDS_DIR="$REF_DIR/pids"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

log() { echo "[kafka-reference] $*" >&2; }

is_our_kafka() {
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -q 'kafka\.Kafka'
}

stop_pid() {
  local pid="$1" dir=""
  [[ -f "$PIDS_DIR/$pid" ]] && dir="$(cat "$PIDS_DIR/$pid")"
  if ! kill -0 "$pid" 2>/dev/null || ! is_our_kafka "$pid"; then
    rm -f "$PIDS_DIR/$pid"
    [[ -n "$dir" ]] && rm -f "$dir/kafka.pid"
    return 0
  fi
  log "stopping broker pid $pid${dir:+ ($dir)}"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDS_DIR/$pid"
  [[ -n "$dir" ]] && rm -f "$dir/kafka.pid"
  return 0
}

if [[ $# -ge 2 && "$1" == "--pid" ]]; then
  if [[ -f "$PIDS_DIR/$2" ]] || is_our_kafka "$2"; then stop_pid "$2"; else
    echo "pid $2 was not started by start.sh" >&2; exit 1; fi
elif [[ $# -ge 1 ]]; then
  pid_file="$1/kafka.pid"
  if [[ -f "$pid_file" ]]; then stop_pid "$(cat "$pid_file")"; else log "no broker pid file in $1"; fi
else
  shopt -s nullglob
  for f in "$PIDS_DIR"/*; do stop_pid "$(basename "$f")"; done
fi
