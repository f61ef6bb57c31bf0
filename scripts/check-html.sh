#!/usr/bin/env bash
# Validates every public page, in each state, and the confirmation mail's HTML part
# with the W3C Nu HTML checker (npm package vnu-jar, run on Java). Uses the binary
# `cargo test` already built; run after it (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug/newsletter}
[ -x "$BIN" ] || cargo build --quiet
missing=()
command -v java >/dev/null || missing+=(default-jre-headless)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
VNU_DIR=${VNU_DIR:-$HOME/.cache/newsletter-vnu}
if [ ! -f "$VNU_DIR/node_modules/vnu-jar/build/dist/vnu.jar" ]; then
  mkdir -p "$VNU_DIR"
  npm install --silent --prefix "$VNU_DIR" vnu-jar@24 >/dev/null
fi

WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && RUST_LOG=info BIND_ADDRESS=127.0.0.1:$PORT exec "$OLDPWD/$BIN" serve > "$WORK/log" 2>&1) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -fs "$URL/health" >/dev/null && break; sleep 0.1; done

mkdir "$WORK/pages"
cd "$WORK/pages"
curl -s "$URL/" > signup.html
curl -s -X POST -d 'email=bad&name=%3Cx%3E&locality=mars' "$URL/subscriptions" > signup-errors.html
curl -s -X POST -d 'email=check%40example.org&name=Check&consent=yes' "$URL/subscriptions" > check-inbox.html
for _ in $(seq 1 100); do ls "$WORK"/outbox/*.eml >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(grep -o 'token=[A-Za-z0-9_-]\{43\}' "$WORK/log" | head -1 | cut -d= -f2)
curl -s "$URL/subscriptions/confirm?token=$TOKEN" > confirm.html
curl -s -X POST -d "token=$TOKEN" "$URL/subscriptions/confirm" > confirmed.html
curl -s -X POST -d "token=$TOKEN" "$URL/subscriptions/confirm" > already-confirmed.html
curl -s -X POST -d "token=garbage" "$URL/subscriptions/confirm" > bad-link.html
python3 - "$WORK"/outbox/*.eml <<'PY'
import email, sys
from email import policy
msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
open("confirmation-mail.html", "w").write(msg.get_body(preferencelist=("html",)).get_content())
PY

# Errors fail the check. The mail's layout table keeps width/cellpadding/cellspacing/
# align attributes on purpose (Outlook ignores CSS widths); nothing else is filtered.
java -jar "$VNU_DIR/node_modules/vnu-jar/build/dist/vnu.jar" --errors-only --also-check-css \
  --filterpattern '.*The “(width|cellpadding|cellspacing|align)” attribute on the “(table|td)” element is obsolete.*' \
  ./*.html
echo "HTML check: $(ls ./*.html | wc -l) documents valid"
