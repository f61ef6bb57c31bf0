#!/usr/bin/env bash
# Sign-up benchmark (not a test): drives POST /subscriptions over HTTP against a release
# build with wrk, on SQLite and on PostgreSQL, while the worker mails every confirmation
# to Postfix's smtp-sink. Prints sign-ups per second, p50/p99 latency, the idle RSS of
# `newsletter serve`, and whether any "database is locked" error was logged.
#
#   scripts/bench-signup.sh                 # both backends, 32 clients, 20 s each
#   CONNECTIONS=64 DURATION=30 scripts/bench-signup.sh sqlite
#   MODE=bombing DURATION=10 scripts/bench-signup.sh   # one IP mails strangers
#
# MODE=throughput (the default) lifts the sign-up budgets, to measure the service;
# MODE=bombing keeps the default budgets, as an attacker meets them, and counts the
# confirmation mails that got out. Either way every sign-up carries its own form
# token, fetched before the run (TOKENS of them) like a bot that waits them out.
#
# REFERENCE_CMD, if set, is another service's sign-up benchmark (zero-to-production's, for
# one), run just before and just after each backend with the same CONNECTIONS and
# DURATION in its environment; it must print `requests_per_s=N` and `p99_ms=M` on one
# line. The machine's speed drifts by half from one minute to the next, so a rate means
# little alone: the line then ends with the reference's mean and our ratio to it.
#
# Needs wrk and smtp-sink (Debian: apt-get install wrk postfix); PostgreSQL at
# BENCH_DATABASE_URL (default: postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-20}
THREADS=${THREADS:-2}
MODE=${MODE:-throughput}
TOKENS=${TOKENS:-$((DURATION * 8000))} # more than it can use: a token used again is a 422
export THREADS
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi

for tool in wrk smtp-sink; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install wrk postfix" >&2; exit 1; }
done

. scripts/lib.sh

SMTP_PORT=$(free_port)
smtp-sink -u "$(id -un)" 127.0.0.1:"$SMTP_PORT" 1000 &
PIDS+=($!)

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

run() {
  local backend=$1 url
  # The reference's first run, before ours starts (its tokens would age meanwhile).
  local before=""
  if [ -n "${REFERENCE_CMD:-}" ]; then before=$(run_reference); fi
  url=$(database_url "$backend" newsletter_bench "$WORK")
  local port; port=$(free_port)
  local log="$WORK/$backend.log"
  local budgets=()
  if [ "$MODE" = throughput ]; then
    budgets=(SIGNUP_BUDGET_PER_CLIENT=0 SIGNUP_BUDGET_PER_DOMAIN=0 SIGNUP_BUDGET_TOTAL=0)
  fi
  env DATABASE_URL="$url" SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" ALLOW_INSECURE_PUBLIC_URL=true BIND_ADDRESS="127.0.0.1:$port" \
    SECRET_KEY=benchmark-secret-key-that-is-long-enough MAIL_CONCURRENCY=8 RUST_LOG=warn \
    "${budgets[@]}" "$BIN" serve > "$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.1
  done
  export TOKENS_FILE="$WORK/tokens"
  python3 - "http://127.0.0.1:$port" "$TOKENS" "$TOKENS_FILE" <<'PY'
import http.client, json, sys, urllib.parse
url, count, path = urllib.parse.urlsplit(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection(url.hostname, url.port)
with open(path, "w") as out:
    for _ in range(count):
        conn.request("GET", "/subscriptions/form-token")
        out.write(json.loads(conn.getresponse().read())["form_token"] + "\n")
PY
  sleep 2 # the tokens' first two seconds
  local idle_rss; idle_rss=$(rss_kb "$pid")

  local result
  result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench-signup.lua \
    "http://127.0.0.1:$port" | grep '^RESULT')
  local peak_rss; peak_rss=$(hwm_kb "$pid")
  local locked; locked=$(grep -ci "database is locked" "$log" || true)
  local errors; errors=$(grep -c " ERROR " "$log" || true)
  # Confirmation mails that got out, and sign-ups the budgets turned away (429).
  local count="SELECT (SELECT count(*) FROM outbox WHERE kind = 'confirmation') || ' ' || (SELECT coalesce(sum(refused), 0) FROM signup_budgets)"
  local mails refused
  if [ "$backend" = postgres ]; then
    read -r mails refused < <(psql "$url" -Atc "$count")
  else
    read -r mails refused < <(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "${url#sqlite://}" "$count")
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local reference=""
  if [ -n "${REFERENCE_CMD:-}" ]; then reference=$(compare "$before" "$(run_reference)" "${result#RESULT }"); fi
  drop_database "$backend" newsletter_bench
  awk -v b="$backend" -v r="${result#RESULT }" -v idle="$idle_rss" -v peak="$peak_rss" \
    -v locked="$locked" -v errors="$errors" -v mails="$mails" -v refused="$refused" -v ref="$reference" 'BEGIN {
      printf "%-8s %s confirmation_mails=%s over_budget=%s idle_rss_mb=%.1f peak_rss_mb=%.1f database_locked=%s logged_errors=%s%s\n",
        b, r, mails, refused, idle / 1024, peak / 1024, locked, errors, ref }'
}

# The reference's line (requests_per_s=… p99_ms=…), run with our clients and duration.
# A reference that fails leaves the line empty (and ours is still printed).
run_reference() {
  { CONNECTIONS=$CONNECTIONS DURATION=$DURATION bash -c "$REFERENCE_CMD" || true; } |
    awk '/requests_per_s=/ && !seen++'
}

# field NAME LINE: the number after NAME= in LINE (empty if it is not there).
field() { grep -o "$1=[0-9.]*" <<<"$2" | cut -d= -f2 || true; }

# compare BEFORE AFTER OURS: the reference's mean rate and p99, and our rate's ratio to it.
compare() {
  awk -v r1="$(field requests_per_s "$1")" -v r2="$(field requests_per_s "$2")" \
    -v p1="$(field p99_ms "$1")" -v p2="$(field p99_ms "$2")" -v ours="$(field requests_per_s "$3")" 'BEGIN {
      mean = (r1 + r2) / 2
      if (mean == 0) { printf " reference=failed"; exit }
      printf " reference_per_s=%.0f reference_p99_ms=%.2f ratio=%.2f", mean, (p1 + p2) / 2, ours / mean }'
}

echo "newsletter sign-up benchmark ($MODE): $CONNECTIONS clients, ${DURATION}s, $(nproc) cores, $(date -u +%FT%TZ)"
for backend in "${BACKENDS[@]}"; do run "$backend"; done
