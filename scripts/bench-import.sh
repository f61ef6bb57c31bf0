#!/usr/bin/env bash
# Import benchmark (not a test): `newsletter admin import-subscribers` of a generated
# CSV of N people into an empty database, in each mode, against a release build.
# Prints the wall time, the rate and the peak RSS of the command.
#
#   scripts/bench-import.sh                    # SQLite, 100,000 people
#   PEOPLE=10000 scripts/bench-import.sh sqlite postgres
#
# PostgreSQL at BENCH_DATABASE_URL (default postgres://postgres:postgres@127.0.0.1:5432/postgres);
# needs GNU time (/usr/bin/time) for the RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

PEOPLE=${PEOPLE:-100000}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 1; }

# BIN=path runs that binary instead (an older build, to compare two in one sitting).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/newsletter
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$PEOPLE" > "$WORK/people.csv" <<'PY'
import sys
print("email,name,organisation,locality")
places = ["Cheltenham", "Cotswold", "Forest of Dean", "Gloucester", "Stroud", "Tewkesbury", ""]
for n in range(int(sys.argv[1])):
    print(f"person-{n:07d}@example.org,Person {n},Organisation {n % 500},{places[n % 7]}")
PY
export SECRET_KEY=a-benchmark-secret-that-is-long-enough RUST_LOG=warn

for backend in "${BACKENDS[@]}"; do
  for mode in confirmed invite; do
    case "$backend" in
      sqlite) export DATABASE_URL="sqlite://$WORK/bench-$mode.db" ;;
      postgres)
        db="newsletter_bench_import"
        psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
        export DATABASE_URL="${ADMIN_URL%/*}/$db" ;;
      *) echo "unknown backend $backend" >&2; exit 1 ;;
    esac
    "$BIN" migrate
    start=$(date +%s%3N)
    /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" admin import-subscribers "$WORK/people.csv" \
      --source-note "Benchmark: generated people" --mode "$mode" > "$WORK/out" 2>/dev/null
    ms=$(( $(date +%s%3N) - start ))
    echo "$backend $mode people=$PEOPLE seconds=$(echo "scale=1; $ms/1000" | bc)" \
      "per_s=$(( PEOPLE * 1000 / ms )) peak_rss_mb=$(( $(cat "$WORK/rss") / 1024 ))" \
      "result=\"$(tail -1 "$WORK/out" | tr -d '\n')\""
  done
done
