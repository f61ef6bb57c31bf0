#!/usr/bin/env bash
# Chaos: kills `newsletter serve` with SIGKILL K times, at random moments, while it
# sends one issue to N subscribers through Postfix's smtp-sink, starting it again at
# once each time. Then counts, at the sink, who was missed and who got two copies, and
# says how long each dead worker's claimed copies waited for another (its leases run
# out, MAIL_LEASE_SECONDS, and the restarted process takes them).
#
#   scripts/chaos-send.sh                          # SQLite, N=2000, K=3
#   N=500 K=2 scripts/chaos-send.sh sqlite postgres
#   BIN=target/debug/newsletter scripts/chaos-send.sh   # a given build (CI: the test build)
#
# Fails if anyone was missed, if duplicates pass K x (MAIL_CONCURRENCY + 8), or if a
# dead worker's copies waited more than 15 s. Needs smtp-sink (apt-get install postfix),
# sqlite3, psql; PostgreSQL at BENCH_DATABASE_URL (default
# postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
K=${K:-3}
CONCURRENCY=${MAIL_CONCURRENCY:-16}
# Slow enough that the send outlasts the kills: each waits out a lease (10 s).
RATE=${RATE:-$(( N / (K * 12 + 5) > 0 ? N / (K * 12 + 5) : 1 ))}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
for tool in smtp-sink sqlite3 psql curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install postfix sqlite3 postgresql-client curl)" >&2; exit 1; }
done
. scripts/lib.sh

failed=0
run() {
  local backend=$1
  local url; url=$(database_url "$backend" newsletter_chaos "$WORK")
  seed_readers "$backend" "$url" "$N"
  local sink_port; sink_port=$(free_port)
  local dump="$WORK/$backend.dump"
  smtp-sink -u "$(id -un)" -D "$dump" 127.0.0.1:"$sink_port" 1000 &
  local sink=$!
  PIDS+=("$sink")
  local port; port=$(free_port)
  export DATABASE_URL=$url SMTP_URL="smtp://127.0.0.1:$sink_port" ALLOW_INSECURE_PUBLIC_URL=true \
    BIND_ADDRESS="127.0.0.1:$port" SECRET_KEY=chaos-secret-key-that-is-long-enough-to-use \
    MAIL_CONCURRENCY=$CONCURRENCY MAIL_RATE_PER_SECOND=$RATE RUST_LOG=warn
  start() { "$BIN" serve >> "$WORK/$backend.log" 2>&1 & pid=$!; PIDS+=("$pid"); wait_healthy "$port"; }
  # until_true SECONDS WHAT COMMAND...: polls, and gives up (failing the run) after SECONDS.
  until_true() {
    local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
    until "$@"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then echo "$backend: gave up waiting until $what" >&2; tail -20 "$WORK/$backend.log" >&2; exit 1; fi
      sleep 0.1
    done
  }
  local pid; start
  local token; token=$("$BIN" admin create-token chaos 2>/dev/null | tail -1)
  local id; id=$(new_issue "$port" "$token")
  curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"send_at": "now"}' "http://127.0.0.1:$port/api/issues/$id/schedule" >/dev/null
  local recoveries=() kills=0
  while [ "$kills" -lt "$K" ]; do
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 1.5), 2))')"
    local left; left=$(sql "$backend" "$url" "SELECT count(*) FROM deliveries WHERE status IN ('queued', 'sending')")
    [ "$left" -gt 0 ] || break
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    forget "$pid"
    local killed; killed=$(now_ms)
    kills=$((kills + 1))
    # Only the dead process held leases when it died: its worker's name.
    local as_text; if [ "$backend" = sqlite ]; then as_text="hex(claimed_by)"; else as_text="claimed_by::text"; fi
    local dead; dead=$(sql "$backend" "$url" "SELECT DISTINCT $as_text FROM deliveries WHERE status = 'sending' LIMIT 1")
    start
    if [ -n "$dead" ]; then
      taken() { [ "$(sql "$backend" "$url" "SELECT count(*) FROM deliveries WHERE status = 'sending' AND $as_text = '$dead'")" = 0 ]; }
      until_true 60 "the dead worker's copies are taken" taken
    fi
    recoveries+=("$(awk -v ms=$(( $(now_ms) - killed )) 'BEGIN { printf "%.1f", ms / 1000 }')")
  done
  sent() { [ "$(sql "$backend" "$url" "SELECT status FROM issues")" = sent ]; }
  until_true $(( N / RATE + 120 )) "the issue is sent" sent
  kill "$pid"; wait "$pid" 2>/dev/null || true; forget "$pid"
  kill "$sink"; wait "$sink" 2>/dev/null || true; forget "$sink"
  local copies distinct
  copies=$(grep -c '^X-Rcpt-Args: ' "$dump" || true)
  distinct=$(grep '^X-Rcpt-Args: ' "$dump" | sort -u | wc -l)
  local missed=$(( N - distinct )) duplicates=$(( copies - distinct ))
  local worst; worst=$(printf '%s\n' "${recoveries[@]:-0}" | sort -n | tail -1)
  echo "$backend N=$N kills=$kills concurrency=$CONCURRENCY rate=$RATE/s: missed=$missed duplicates=$duplicates (at most $(( kills * (CONCURRENCY + 8) )) allowed) recovery_s=${recoveries[*]:-none} (at most 15)"
  if [ "$missed" -ne 0 ] || [ "$duplicates" -gt $(( kills * (CONCURRENCY + 8) )) ] \
     || awk -v w="$worst" 'BEGIN { exit !(w > 15) }'; then
    echo "$backend: FAILED" >&2
    tail -20 "$WORK/$backend.log" >&2
    failed=1
  fi
  drop_database "$backend" newsletter_chaos
}

echo "newsletter chaos: $K kills during a send to $N, $(nproc) cores, $(date -u +%FT%TZ)"
for backend in "${BACKENDS[@]}"; do run "$backend"; done
exit "$failed"
