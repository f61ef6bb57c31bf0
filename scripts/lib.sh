# Shared by the benchmark and chaos scripts: sourced, not run, from the repository's
# root. Sourcing it builds the release binary unless BIN names one (an older build, to
# compare two in one sitting), makes WORK, a folder removed at exit, and stops every
# process in PIDS at exit. The database helpers expect ADMIN_URL (a PostgreSQL server
# where databases may be made).

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/newsletter
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# forget PID: it was reaped; its number may soon be another process's.
forget() { local keep=() p; for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# database_url BACKEND NAME DIR: a new, empty database's URL (a file in DIR for SQLite).
database_url() {
  case "$1" in
    sqlite) echo "sqlite://$3/$2.db" ;;
    postgres)
      psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" -c "CREATE DATABASE $2" >&2
      python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$ADMIN_URL" "$2"
      ;;
    *) echo "unknown backend $1" >&2; return 1 ;;
  esac
}

# drop_database BACKEND NAME
drop_database() {
  if [ "$1" = postgres ]; then psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)"; fi
}

# seed_readers BACKEND URL N: migrates, and adds N confirmed subscribers readerI@example.org.
seed_readers() {
  local backend=$1 url=$2 n=$3
  DATABASE_URL=$url "$BIN" migrate 2>/dev/null
  case "$backend" in
    sqlite)
      sqlite3 "${url#sqlite://}" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n)
INSERT INTO subscribers (id, email, name, created_at, updated_at)
SELECT randomblob(16), 'reader' || i || '@example.org', 'Reader', 0, 0 FROM n;
INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
SELECT id, X'019ab0c0000070008000000000000001', 'confirmed', 0, 0 FROM subscribers;
SQL
      ;;
    postgres)
      psql -q "$url" <<SQL
INSERT INTO subscribers (id, email, name, created_at, updated_at)
SELECT gen_random_uuid(), 'reader' || i || '@example.org', 'Reader', now(), now()
FROM generate_series(1, $n) AS i;
INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
SELECT id, '019ab0c0-0000-7000-8000-000000000001', 'confirmed', now(), now() FROM subscribers;
SQL
      ;;
  esac
}

# sql BACKEND URL QUERY: one value.
sql() {
  case "$1" in
    sqlite) sqlite3 -cmd '.timeout 5000' "${2#sqlite://}" "$3" ;;
    postgres) psql -Atq "$2" -c "$3" ;;
  esac
}

# wait_healthy PORT: until /health answers (10 s at most).
wait_healthy() {
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/health" >/dev/null && return 0; sleep 0.1; done
  echo "the service on port $1 did not come up" >&2; return 1
}

# new_issue PORT TOKEN: makes the benchmark issue; prints its id.
new_issue() {
  curl -sf -H "Authorization: Bearer $2" -H 'content-type: application/json' -d '{"subject": "Benchmark issue", "preheader": "Numbers",
    "body_markdown": "## This quarter\n\nNews from the [partnership](https://example.org/), with a list:\n\n- Know Your Patch\n- ILP representatives\n- Memorandum of Understanding\n\nAnd a closing paragraph of ordinary length, as an issue would have."}' \
    "http://127.0.0.1:$1/api/issues" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
