#!/usr/bin/env bash
# Every benchmark that speaks to the issue's targets, one after another, on a quiet
# machine (not while CI or a build runs): sending on both databases (plain, and with
# RSA DKIM against `openssl speed -multi`), sign-ups on both, and the chaos run.
#
#   scripts/bench-all.sh                         # 100,000 recipients
#   RECIPIENTS=1000000 scripts/bench-all.sh      # the full size
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
export BIN=$PWD/target/release/newsletter
RECIPIENTS=${RECIPIENTS:-100000}

echo "== sending, $RECIPIENTS recipients"
RECIPIENTS=$RECIPIENTS scripts/bench-send.sh sqlite postgres
echo "== sending with RSA-2048 DKIM"
RECIPIENTS=$(( RECIPIENTS < 100000 ? RECIPIENTS : 100000 )) DKIM=rsa scripts/bench-send.sh sqlite postgres
echo "== sign-ups"
scripts/bench-signup.sh sqlite postgres
echo "== chaos: kill -9 during a send"
N=5000 K=3 scripts/chaos-send.sh sqlite postgres
