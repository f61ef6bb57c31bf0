#!/usr/bin/env bash
# Segment count benchmark (not a test): how long the editor's count (`GET /admin/reach`,
# the same query that makes an issue's deliveries) takes for segments of a list of N
# confirmed people, on each backend, against a release build. The reference, in the
# same run, is the database's own client counting the whole list with no segment
# (`SELECT count(*) ... WHERE list_id AND status`), which no segment count can beat.
#
#   scripts/bench-segments.sh                      # SQLite and PostgreSQL, 100,000 people
#   PEOPLE=10000 RUNS=20 scripts/bench-segments.sh sqlite
#
# PostgreSQL at BENCH_DATABASE_URL (default postgres://postgres:postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

PEOPLE=${PEOPLE:-100000}
RUNS=${RUNS:-50}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite postgres); fi
command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (apt-get install sqlite3)" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/newsletter
fi
WORK=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
python3 - "$PEOPLE" > "$WORK/people.csv" <<'PY'
import sys
print("email,name,organisation,locality")
places = ["Cheltenham", "Cotswold", "Forest of Dean", "Gloucester", "Stroud", "Tewkesbury", ""]
for n in range(int(sys.argv[1])):
    org = f"Organisation {n % 500}" if n % 3 else ""
    print(f"person-{n:07d}@example.org,Person {n},{org},{places[n % 7]}")
PY
export SECRET_KEY=a-benchmark-secret-that-is-long-enough RUST_LOG=warn SIGNUP_FORM_MIN_SECONDS=0
PASSWORD="a long and memorable passphrase"

# The median of RUNS timings (milliseconds) of a command's wall time.
median_ms() {
  local times=()
  for _ in $(seq 1 "$RUNS"); do
    local start=$(date +%s%N)
    "$@" > /dev/null
    times+=($(( ($(date +%s%N) - start) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

for backend in "${BACKENDS[@]}"; do
  case "$backend" in
    sqlite)
      export DATABASE_URL="sqlite://$WORK/bench.db"
      reference() { sqlite3 "$WORK/bench.db" "SELECT count(*) FROM subscriptions WHERE list_id = (SELECT id FROM lists WHERE slug = 'in-partnership') AND status = 'confirmed'"; } ;;
    postgres)
      db="newsletter_bench_segments"
      psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
      export DATABASE_URL="${ADMIN_URL%/*}/$db"
      reference() { psql -qtA "$DATABASE_URL" -c "SELECT count(*) FROM subscriptions WHERE list_id = (SELECT id FROM lists WHERE slug = 'in-partnership') AND status = 'confirmed'"; } ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  "$BIN" migrate
  "$BIN" admin import-subscribers "$WORK/people.csv" --source-note "Benchmark: generated people" \
    --mode confirmed > /dev/null 2>&1
  # PostgreSQL's autovacuum analyses the new rows within a minute or so; until it has,
  # the planner thinks the list is empty. Analyse now rather than wait.
  [ "$backend" = postgres ] && psql -q "$DATABASE_URL" -c ANALYZE
  printf '%s\n' "$PASSWORD" | "$BIN" admin create-user bench@example.org --role admin > /dev/null 2>&1
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  BIND_ADDRESS=127.0.0.1:$PORT "$BIN" serve > "$WORK/log" 2>&1 &
  SERVER=$!
  URL=http://127.0.0.1:$PORT
  for _ in $(seq 1 100); do curl -fs "$URL/health" >/dev/null && break; sleep 0.1; done
  JAR=$WORK/cookies
  CSRF=$(curl -s -c "$JAR" "$URL/admin/login" | grep -o 'name="csrf" value="[^"]*"' | cut -d'"' -f4)
  curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "email=bench@example.org" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "csrf=$CSRF" "$URL/admin/login"
  reach() { curl -sf -b "$JAR" "$URL/admin/reach?$1"; }
  echo "$backend: $PEOPLE confirmed; reference (whole list, the database's own client): $(median_ms reference) ms, $(reference) people"
  for segment in "" "locality=stroud" "locality=stroud&locality=forest-of-dean&organisation=given" \
    "locality=stroud&locality_operator=not_in&signed_up_on_or_after=2020-01-01"; do
    people=$(reach "$segment" | python3 -c 'import json,sys; print(json.load(sys.stdin)["people"])')
    echo "  reach ${segment:-(everyone)}: $(median_ms reach "$segment") ms, $people people"
  done
  kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=
done
