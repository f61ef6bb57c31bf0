#!/usr/bin/env bash
# Slow clients (not a test): SLOW connections trickle a request's headers a byte every
# 10 s and IDLE kept-alive connections sit after one answer, against `newsletter serve`
# with its default limits. Prints how many are still open WAIT seconds later, and how
# long /health takes to answer meanwhile.
#
#   scripts/bench-slow-clients.sh          # 200 slow, 50 idle, 30 s
set -euo pipefail
cd "$(dirname "$0")/.."
SLOW=${SLOW:-200} IDLE=${IDLE:-50} WAIT=${WAIT:-30}
# BIN=path runs that binary instead (an older build, to compare two in one sitting).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/newsletter
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && BIND_ADDRESS=127.0.0.1:$PORT RUST_LOG=warn exec "$BIN" serve > log 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
python3 - "$PORT" "$SLOW" "$IDLE" "$WAIT" <<'PY'
import socket, sys, threading, time, urllib.request
port, slow, idle, wait = (int(a) for a in sys.argv[1:])
open_ = {"slow": 0, "idle": 0}
lock = threading.Lock()
def still_open(s):
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
def trickle(s):
    for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":
        try:
            s.send(bytes([byte]))
        except OSError:
            return
        time.sleep(10)
conns = []
for _ in range(slow):
    s = socket.create_connection(("127.0.0.1", port))
    threading.Thread(target=trickle, args=(s,), daemon=True).start()
    conns.append(("slow", s))
for _ in range(idle):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)
    conns.append(("idle", s))
latencies = []
end = time.time() + wait
while time.time() < end:
    t = time.time()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30).read()
    latencies.append(time.time() - t)
    time.sleep(1)
left = {"slow": 0, "idle": 0}
for kind, s in conns:
    left[kind] += still_open(s)
print(f"RESULT after {wait}s: slow_open={left['slow']}/{slow} idle_open={left['idle']}/{idle} "
      f"health_max_ms={max(latencies) * 1000:.0f} health_checks={len(latencies)}")
PY
