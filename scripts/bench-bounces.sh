#!/usr/bin/env bash
# Benchmarks (not tests) of what comes back:
#
# 1. Reading: `newsletter bounces parse` over every sample message in tests/bounces/,
#    compared with what each file's expected.tsv says it is: messages, failures put
#    down to the right address, failures counted wrongly, warnings counted as failures.
# 2. The IMAP path: an issue goes to N subscribers (through smtp-sink, which keeps each
#    copy), a DSN for every copy is delivered into a throwaway Dovecot's mailbox (7 in
#    10 hard, 2 soft, 1 a delay), and `newsletter bounces fetch` takes them all. As the
#    reference in the same run, Python's imaplib fetches the same N messages over the
#    same connection kind and does nothing with them.
#
#   scripts/bench-bounces.sh                   # SQLite, 10,000 bounces
#   BOUNCES=2000 scripts/bench-bounces.sh sqlite postgres
#
# Needs Dovecot (apt-get install dovecot-imapd), smtp-sink (postfix), sqlite3, psql,
# python3; PostgreSQL at BENCH_DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BOUNCES:-10000}
ADMIN_URL=${BENCH_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
if [ $# -gt 0 ]; then BACKENDS=("$@"); else BACKENDS=(sqlite); fi
for tool in dovecot smtp-sink sqlite3 curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/newsletter
fi
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

echo "== 1. Reading the sample messages (tests/bounces/)"
for corpus in mailman formats; do
  "$BIN" bounces parse tests/bounces/$corpus/*.eml > "$WORK/$corpus.jsonl"
  python3 - "$WORK/$corpus.jsonl" "tests/bounces/$corpus/expected.tsv" "$corpus" <<'PY'
import json, os, sys
readings = {os.path.basename(json.loads(l)["file"]): json.loads(l) for l in open(sys.argv[1])}
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
# The truth: Mailman's verdict (failure, warning, nothing) for its corpus; the file's
# own kind for ours.
failure_words = {"failure", "hard", "soft"}
failures = right = wrong_rows = extra = warned = unlisted = 0
for row in rows:
    got = readings[row[0]]
    truth = row[1]
    if truth == "unlisted":
        unlisted += 1
        continue
    expected = {a.lower() for a in row[2].split(",") if a}
    found = {a.lower() for a in got["recipients"]}
    counted = got["kind"] in ("hard", "soft")
    if truth in failure_words:
        failures += 1
        if counted and expected <= found:
            right += 1
        if counted:
            extra += len(found - expected)
    elif counted:
        wrong_rows += 1
        warned += truth == "warning"
print(f"{sys.argv[3]:8} messages={len(rows)} (not in the table: {unlisted}) failures={failures} "
      f"right_address={right} counted_not_failures={wrong_rows} (warnings: {warned}) "
      f"extra_addresses={extra}")
PY
done

# A throwaway Dovecot on a free port: one user, a maildir, no TLS (loopback only).
IMAP_PORT=$(free_port)
mkdir -p "$WORK/dovecot/mail/bounces"/{new,cur,tmp} "$WORK/dovecot/run"
if [ "$(id -u)" = 0 ]; then MAIL_UID=65534; USERS=""; else MAIL_UID=$(id -u); USERS="default_internal_user = $(id -un)
default_login_user = $(id -un)"; fi
chown -R "$MAIL_UID" "$WORK/dovecot/mail"
echo 'bounces:{PLAIN}bench-pass' > "$WORK/dovecot/passwd"
cat > "$WORK/dovecot/dovecot.conf" <<CONF
base_dir = $WORK/dovecot/run
state_dir = $WORK/dovecot/run
log_path = $WORK/dovecot/log
$USERS
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
mail_location = maildir:$WORK/dovecot/mail/%u
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $WORK/dovecot/passwd
}
userdb {
  driver = static
  args = uid=$MAIL_UID gid=$MAIL_UID home=$WORK/dovecot/mail/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
CONF
dovecot -F -c "$WORK/dovecot/dovecot.conf" &
PIDS+=($!)
for _ in $(seq 1 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $IMAP_PORT))" 2>/dev/null && break; sleep 0.1; done

run() {
  local backend=$1 url
  case "$backend" in
    sqlite) url="sqlite://$WORK/bounces.db" ;;
    postgres)
      psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS newsletter_bounce_bench WITH (FORCE)" -c "CREATE DATABASE newsletter_bounce_bench"
      url=$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/newsletter_bounce_bench")))' "$ADMIN_URL")
      ;;
    *) echo "unknown backend $backend" >&2; exit 1 ;;
  esac
  DATABASE_URL=$url "$BIN" migrate 2>/dev/null
  case "$backend" in
    sqlite) sqlite3 "${url#sqlite://}" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO subscribers (id, email, name, created_at, updated_at)
SELECT randomblob(16), 'reader' || i || '@example.net', 'Reader', 0, 0 FROM n;
INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
SELECT id, X'019ab0c0000070008000000000000001', 'confirmed', 0, 0 FROM subscribers;
SQL
    ;;
    postgres) psql -q "$url" <<SQL
INSERT INTO subscribers (id, email, name, created_at, updated_at)
SELECT gen_random_uuid(), 'reader' || i || '@example.net', 'Reader', now(), now() FROM generate_series(1, $N) AS i;
INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
SELECT id, '019ab0c0-0000-7000-8000-000000000001', 'confirmed', now(), now() FROM subscribers;
SQL
    ;;
  esac

  # The issue goes out; smtp-sink keeps every copy, with its envelope.
  local copies="$WORK/copies-$backend" sink_port port
  mkdir -p "$copies"
  sink_port=$(free_port)
  smtp-sink -u "$(id -un)" -d "$copies/%M." 127.0.0.1:"$sink_port" 100 &
  local sink=$!
  PIDS+=("$sink")
  port=$(free_port)
  export DATABASE_URL=$url SMTP_URL="smtp://127.0.0.1:$sink_port" ALLOW_INSECURE_PUBLIC_URL=true \
    BIND_ADDRESS="127.0.0.1:$port" SECRET_KEY=benchmark-secret-key-that-is-long-enough \
    BOUNCE_ADDRESS=bounces@news.example.org RUST_LOG=warn BREAKER_MIN_COPIES=100000000
  "$BIN" serve > "$WORK/$backend.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  local token; token=$("$BIN" admin create-token bench 2>/dev/null | tail -1)
  api() { curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' "$@"; }
  local id; id=$(api -d '{"subject": "Bounce benchmark", "preheader": "", "body_markdown": "Hello."}' \
    "http://127.0.0.1:$port/api/issues" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api -d '{"send_at": "now"}' "http://127.0.0.1:$port/api/issues/$id/schedule" >/dev/null
  until api "http://127.0.0.1:$port/api/issues/$id" | grep -q '"status":"sent"'; do sleep 0.2; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  kill "$sink"; wait "$sink" 2>/dev/null || true

  # A DSN for every copy, delivered into the maildir as a delivery agent leaves it.
  python3 - "$copies" "$WORK/dovecot/mail/bounces/new" <<'PY'
import os, re, sys, uuid
copies, new = sys.argv[1], sys.argv[2]
# 7 in 10 hard, 2 soft (a full mailbox), 1 a delay.
KINDS = [("5.1.1", "failed", "550 5.1.1 User unknown")] * 7 + \
    [("5.2.2", "failed", "552 5.2.2 Mailbox full")] * 2 + [("4.4.1", "delayed", "Connection timed out")]
for i, name in enumerate(sorted(os.listdir(copies))):
    text = open(os.path.join(copies, name), errors="replace").read()
    verp = re.search(r"^X-Mail-Args: <([^>]*)>", text, re.M).group(1)
    rcpt = re.search(r"^X-Rcpt-Args: <([^>]*)>", text, re.M).group(1)
    mid = re.search(r"^Message-ID: (<[^>]*>)", text, re.M | re.I).group(1)
    status, action, words = KINDS[i % 10]
    dsn = (f"Return-Path: <>\r\nDelivered-To: {verp}\r\nFrom: MAILER-DAEMON@mx.example.net\r\n"
           f"To: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@mx.example.net>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
           "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
           "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
           f"Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n"
           f"Diagnostic-Code: smtp; {words}\r\n\r\n"
           f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: {rcpt}\r\nMessage-ID: {mid}\r\n\r\n--B--\r\n")
    open(os.path.join(new, f"{1700000000 + i}.bench{i}.localhost"), "w").write(dsn)
PY
  [ "$(id -u)" = 0 ] && chown -R "$MAIL_UID" "$WORK/dovecot/mail"

  # The reference: fetch every message over IMAP and do nothing with it.
  local reference_ms; reference_ms=$(python3 - "$IMAP_PORT" <<'PY'
import imaplib, sys, time
start = time.time()
imap = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
imap.login("bounces", "bench-pass")
imap.select("INBOX", readonly=True)
_, data = imap.uid("SEARCH", None, "ALL")
uids = data[0].split()
for i in range(0, len(uids), 200):
    imap.uid("FETCH", b",".join(uids[i:i + 200]), "(BODY.PEEK[])")
imap.logout()
print(int((time.time() - start) * 1000))
PY
)
  local start; start=$(now_ms)
  local said; said=$(BOUNCE_IMAP_URL="imap://bounces:bench-pass@127.0.0.1:$IMAP_PORT/INBOX" "$BIN" bounces fetch)
  local elapsed=$(( $(now_ms) - start ))
  local bounced; bounced=$(case "$backend" in
    sqlite) sqlite3 "${url#sqlite://}" "SELECT count(*) FROM subscriptions WHERE status = 'bounced'" ;;
    postgres) psql -Atq "$url" -c "SELECT count(*) FROM subscriptions WHERE status = 'bounced'" ;;
  esac)
  awk -v b="$backend" -v n="$N" -v ms="$elapsed" -v ref="$reference_ms" -v said="$said" -v bounced="$bounced" 'BEGIN {
    printf "%-8s bounces=%d taken_in_s=%.1f per_s=%.0f imap_fetch_only_s=%.1f ratio=%.2f bounced_subscriptions=%s fetch=%s\n",
      b, n, ms / 1000, n / (ms / 1000), ref / 1000, ref / ms, bounced, said }'
  # Empty the mailbox's Processed folder for the next backend.
  rm -rf "$WORK/dovecot/mail/bounces/.Processed" "$WORK/dovecot/mail/bounces/.Unrecognised"
  unset BOUNCE_ADDRESS BREAKER_MIN_COPIES
  if [ "$backend" = postgres ]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS newsletter_bounce_bench WITH (FORCE)"
  fi
}

echo "== 2. The IMAP path: $N bounces in the mailbox, $(nproc) cores, $(date -u +%FT%TZ)"
for backend in "${BACKENDS[@]}"; do run "$backend"; done
