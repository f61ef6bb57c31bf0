#!/usr/bin/env bash
# Sending benchmark (not a test): one issue to N confirmed subscribers through Postfix's
# smtp-sink on loopback, against a release build; and Postfix's own smtp-source against
# the same sink with messages of the same size, just before and just after (their mean
# is the reference). Prints both rates, their ratio, how long queueing the N deliveries
# took, and the peak RSS of `newsletter serve`.
#
#   scripts/bench-send.sh                      # SQLite, 10,000 recipients
#   RECIPIENTS=1000000 scripts/bench-send.sh sqlite postgres
#   DKIM=rsa scripts/bench-send.sh             # sign every message (rsa or ed25519)
#   BIN=/tmp/newsletter-old scripts/bench-send.sh sqlite   # a given binary, e.g. to compare
#
# Needs smtp-sink and smtp-source (Debian: apt-get install postfix) and sqlite3/psql;
# PostgreSQL at BENCH_DATABASE_URL (default postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

RECIPIENTS=${RECIPIENTS:-10000}
CONCURRENCY=${MAIL_CONCURRENCY:-16}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
for tool in smtp-sink smtp-source sqlite3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install postfix sqlite3 curl)" >&2; exit 1; }
done

. scripts/lib.sh

if [ -n "${DKIM:-}" ]; then
  case "$DKIM" in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/dkim.pem" 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$WORK/dkim.pem" ;;
    *) echo "DKIM must be rsa or ed25519" >&2; exit 1 ;;
  esac
  export DKIM_KEY_FILE=$WORK/dkim.pem DKIM_SELECTOR=bench DKIM_DOMAIN=example.org
fi
# The reference for signing: OpenSSL's own RSA-2048 signatures a second, on every core.
OPENSSL_SIGNS=0
if [ "${DKIM:-}" = rsa ]; then
  OPENSSL_SIGNS=$(openssl speed -multi "$(nproc)" -seconds 5 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')
fi

SINK_PORT=$(free_port)
smtp-sink -u "$(id -un)" 127.0.0.1:"$SINK_PORT" 1000 &
PIDS+=($!)

run() {
  local backend=$1 url
  url=$(database_url "$backend" newsletter_send_bench "$WORK")
  seed_readers "$backend" "$url" "$RECIPIENTS"
  local port; port=$(free_port)
  local log="$WORK/$backend.log"
  export DATABASE_URL=$url SMTP_URL="smtp://127.0.0.1:$SINK_PORT" ALLOW_INSECURE_PUBLIC_URL=true BIND_ADDRESS="127.0.0.1:$port" \
    SECRET_KEY=benchmark-secret-key-that-is-long-enough MAIL_CONCURRENCY=$CONCURRENCY RUST_LOG=info
  "$BIN" serve > "$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_healthy "$port"
  local token; token=$("$BIN" admin create-token bench 2>/dev/null | tail -1)
  api() { curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' "$@"; }
  local id; id=$(new_issue "$port" "$token")
  local size; size=$(( $(api "http://127.0.0.1:$port/api/issues/$id/preview" | wc -c) \
    + $(api "http://127.0.0.1:$port/api/issues/$id/preview?format=text" | wc -c) + 1200 ))
  # Postfix's own client, same sink, same size, same number of connections: before and
  # after ours, so a machine that slows down or speeds up during the run weighs on both.
  source_run() {
    local t0; t0=$(now_ms)
    smtp-source -s "$CONCURRENCY" -m "$RECIPIENTS" -l "$size" -f news@example.org -t reader@example.org \
      127.0.0.1:"$SINK_PORT"
    echo $(( $(now_ms) - t0 ))
  }
  local source_before; source_before=$(source_run)
  local start; start=$(now_ms)
  api -d '{"send_at": "now"}' "http://127.0.0.1:$port/api/issues/$id/schedule" >/dev/null
  until api "http://127.0.0.1:$port/api/issues/$id" | grep -q '"status":"sent"'; do sleep 0.2; done
  local elapsed=$(( $(now_ms) - start ))
  local stats; stats=$(api "http://127.0.0.1:$port/api/issues/$id/stats")
  local peak; peak=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  local cpu; cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")
  local queued; queued=$(grep -o 'queued_in_ms=[0-9]*' "$log" | head -1 | cut -d= -f2)
  kill "$pid"; wait "$pid" 2>/dev/null || true

  local source_elapsed=$(( (source_before + $(source_run)) / 2 ))

  awk -v b="$backend" -v n="$RECIPIENTS" -v ms="$elapsed" -v sms="$source_elapsed" -v size="$size" \
      -v peak="$peak" -v cpu="$cpu" -v queued="$queued" -v stats="$stats" -v signs="$OPENSSL_SIGNS" 'BEGIN {
    ours = n / (ms / 1000); theirs = n / (sms / 1000);
    printf "%-8s recipients=%d message_bytes=%d newsletter_per_s=%.0f smtp_source_per_s=%.0f ratio=%.2f queued_in_ms=%s total_s=%.1f cpu_s=%s peak_rss_mb=%.1f",
      b, n, size, ours, theirs, ours / theirs, queued, ms / 1000, cpu, peak / 1024;
    if (signs > 0) printf " openssl_rsa2048_signs_per_s=%.0f vs_openssl=%.2f", signs, ours / signs;
    printf " stats=%s\n", stats }'
  drop_database "$backend" newsletter_send_bench
}

echo "newsletter sending benchmark: $RECIPIENTS recipients, concurrency $CONCURRENCY, DKIM ${DKIM:-off}, $(nproc) cores, $(date -u +%FT%TZ)"
for backend in "${BACKENDS[@]}"; do run "$backend"; done
