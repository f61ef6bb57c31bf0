#!/usr/bin/env bash
# Sign-in under attack (not a test): PARALLEL wrong passwords for one staff address, all
# at once, from one client. Prints how many were checked against the password (401)
# and how many were turned away before it (429), and the service's peak RSS, which
# stays flat because password checks are bounded by the machine's cores.
#
#   scripts/bench-signin.sh            # 64 at once, SQLite
#   PARALLEL=256 DATABASE_URL=postgres://... scripts/bench-signin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PARALLEL=${PARALLEL:-64}
# BIN=path runs that binary instead (an older build, to compare two in one sitting).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/newsletter
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/bench.db} BIND_ADDRESS=127.0.0.1:$PORT RUST_LOG=warn
export SECRET_KEY=benchmark-secret-key-that-is-long-enough OUTBOX_DIR=$WORK/outbox
"$BIN" migrate
echo "a long and memorable passphrase" | "$BIN" admin create-user staff@example.org --role admin >/dev/null
"$BIN" serve > "$WORK/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
idle=$(awk '/^VmRSS/ {print $2}' /proc/$PID/status)
python3 - "http://127.0.0.1:$PORT" "$PARALLEL" <<'PY'
import collections, http.client, re, sys, threading, urllib.parse
base, n = urllib.parse.urlsplit(sys.argv[1]), int(sys.argv[2])
forms = []
for _ in range(n):  # each attempt with its own sign-in form, as a browser has
    c = http.client.HTTPConnection(base.hostname, base.port)
    c.request("GET", "/admin/login")
    r = c.getresponse()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', r.read().decode()).group(1)
    forms.append((c, cookie, csrf))
statuses, start = collections.Counter(), threading.Barrier(n)
def attempt(c, cookie, csrf):
    body = urllib.parse.urlencode({"email": "staff@example.org", "password": "a wrong guess at it", "csrf": csrf})
    start.wait()
    c.request("POST", "/admin/login", body, {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    statuses[c.getresponse().status] += 1
threads = [threading.Thread(target=attempt, args=f) for f in forms]
[t.start() for t in threads]; [t.join() for t in threads]
print(f"RESULT attempts={n} checked_401={statuses[401]} refused_429={statuses[429]} busy_503={statuses[503]} other={n - statuses[401] - statuses[429] - statuses[503]}")
PY
peak=$(awk '/^VmHWM/ {print $2}' /proc/$PID/status)
echo "idle_rss_mb=$((idle / 1024)) peak_rss_mb=$((peak / 1024)) backend=${DATABASE_URL%%:*} cores=$(nproc)"
