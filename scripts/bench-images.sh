#!/usr/bin/env bash
# How long an image upload takes, and how much memory it needs: a phone photo (4032 by
# 3024 JPEG, as a 12-megapixel camera makes) uploaded into an issue from the editor, N
# times, against ImageMagick doing the same work (turn upright, strip, make 1200 wide,
# encode) in the same run. Installs ImageMagick if it is missing.
#   scripts/bench-images.sh            (BIN=target/release/newsletter by default; N=5)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/newsletter}
[ -x "$BIN" ] || cargo build --release --quiet
BIN=$(realpath "$BIN")
N=${N:-5}
[ -x /usr/bin/convert ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagemagick >/dev/null
CONVERT=/usr/bin/convert
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && RUST_LOG=warn BIND_ADDRESS=127.0.0.1:$PORT exec "$BIN" serve > "$WORK/log" 2>&1) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -fs "$URL/health" >/dev/null && break; sleep 0.1; done

"$CONVERT" -size 4032x3024 plasma:fractal -quality 92 "$WORK/photo.jpg"
echo "photo: $(stat -c %s "$WORK/photo.jpg") bytes, 4032x3024"

(cd "$WORK" && echo "a long and memorable passphrase" | "$BIN" admin create-user bench@example.org --role editor >/dev/null)
JAR=$WORK/cookies
CSRF=$(curl -s -c "$JAR" "$URL/admin/login" | grep -o 'name="csrf" value="[^"]*"' | cut -d'"' -f4)
curl -s -b "$JAR" -c "$JAR" -o /dev/null \
  -d "email=bench%40example.org&password=a+long+and+memorable+passphrase&csrf=$CSRF" "$URL/admin/login"
PAGE=$(curl -s -b "$JAR" "$URL/admin/issues/new")
CSRF=$(echo "$PAGE" | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
ISSUE=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' \
  -d "csrf=$CSRF&subject=Bench&body_markdown=Hello.&template=standard" "$URL/admin/issues")
ISSUE=${ISSUE%%\?*}

upload_ms=()
for _ in $(seq 1 "$N"); do
  t=$(curl -s -b "$JAR" -o /dev/null -w '%{time_total}' -H 'Accept: application/json' \
    -F "csrf=$CSRF" -F "alt=A photo" -F "image=@$WORK/photo.jpg;type=image/jpeg" "$ISSUE/images")
  upload_ms+=("$(python3 -c "print(round($t*1000))")")
done
RSS=$(grep VmHWM /proc/$SERVER/status | awk '{print $2}')
kept=$(curl -s -b "$JAR" "$ISSUE" | grep -o '/media/[0-9a-f]*-[0-9]*x[0-9]*\.jpg' | head -1)

ref_ms=()
for _ in $(seq 1 "$N"); do
  s=$(date +%s%N)
  "$CONVERT" "$WORK/photo.jpg" -auto-orient -strip -resize '1200x>' -quality 85 "$WORK/ref.jpg"
  ref_ms+=($(( ($(date +%s%N) - s) / 1000000 )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "kept: $kept"
echo "newsletter upload median_ms=$(median "${upload_ms[@]}") (all: ${upload_ms[*]}) server_peak_rss_mb=$((RSS / 1024))"
echo "imagemagick same work median_ms=$(median "${ref_ms[@]}") (all: ${ref_ms[*]})"
