#!/usr/bin/env bash
# Browser tests: headless Chromium (Debian's package; no browser download) driven by
# Playwright, against the real app and an SMTP server of the tests' own, plus an
# axe-core accessibility check of the public and staff pages. Uses the binary
# `cargo test` already built; run after it (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug/newsletter}
[ -x "$BIN" ] || cargo build --quiet
BIN=$(realpath "$BIN")
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# playwright-core and axe-core, installed once into a cache outside the checkout.
DEPS=${BROWSER_TEST_DEPS:-$HOME/.cache/newsletter-browser}
if ! cmp -s tests/browser/package.json "$DEPS/package.json"; then
  rm -rf "$DEPS"
  mkdir -p "$DEPS"
  cp tests/browser/package.json "$DEPS/"
  npm install --silent --no-audit --no-fund --prefix "$DEPS" >/dev/null
fi

NODE_PATH="$DEPS/node_modules" NEWSLETTER_BIN="$BIN" CHROMIUM="$(command -v chromium)" \
  node --test --test-reporter=spec tests/browser/
