#!/usr/bin/env bash
# Sign-up benchmark (not a test): drives POST /subscriptions over HTTP against a release
# build with wrk, on SQLite and on PostgreSQL, while the worker mails every confirmation
# to Postfix's smtp-sink. Prints sign-ups per second, p50/p99 latency, the idle RSS of
# `newsletter serve`, and whether any "database is locked" error was logged.
#
#   scripts/bench-signup.sh                 # both backends, 32 clients, 20 s each
#   CONNECTIONS=64 DURATION=30 scripts/bench-signup.sh sqlite
#
# Needs wrk and smtp-sink (Debian: apt-get install wrk postfix); PostgreSQL at
# BENCH_DATABASE_URL (default: postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20}
THREADS=${THREADS:-2}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi

for tool in wrk smtp-sink; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install wrk postfix" >&2; exit 1; }
done

cargo build --release --quiet
BIN=$PWD/target/release/newsletter
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SMTP_PORT=$(free_port)
smtp-sink -u "$(id -un)" 127.0.0.1:"$SMTP_PORT" 1000 &
PIDS+=($!)

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

run() {
  local backend=$1 url
  case "$backend" in
    sqlite) url="sqlite://$WORK/bench.db" ;;
    postgres)
      psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS newsletter_bench WITH (FORCE)"
      psql "$ADMIN_URL" -qc "CREATE DATABASE newsletter_bench"
      url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/newsletter_bench")))' "$ADMIN_URL")
      ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  local port; port=$(free_port)
  local log="$WORK/$backend.log"
  DATABASE_URL=$url SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" BIND_ADDRESS="127.0.0.1:$port" \
    SECRET_KEY=benchmark-secret-key-that-is-long-enough MAIL_CONCURRENCY=8 RUST_LOG=warn \
    "$BIN" serve > "$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.1
  done
  sleep 2
  local idle_rss; idle_rss=$(rss_kb "$pid")

  local result
  result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench-signup.lua \
    "http://127.0.0.1:$port" | grep '^RESULT')
  local peak_rss; peak_rss=$(hwm_kb "$pid")
  local locked; locked=$(grep -ci "database is locked" "$log" || true)
  local errors; errors=$(grep -c " ERROR " "$log" || true)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ "$backend" = postgres ]; then
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS newsletter_bench WITH (FORCE)"
  fi
  awk -v b="$backend" -v r="${result#RESULT }" -v idle="$idle_rss" -v peak="$peak_rss" \
    -v locked="$locked" -v errors="$errors" 'BEGIN {
      printf "%-8s %s idle_rss_mb=%.1f peak_rss_mb=%.1f database_locked=%s logged_errors=%s\n",
        b, r, idle / 1024, peak / 1024, locked, errors }'
}

echo "newsletter sign-up benchmark: $CONNECTIONS clients, ${DURATION}s, $(nproc) cores, $(date -u +%FT%TZ)"
for backend in "${BACKENDS[@]}"; do run "$backend"; done
