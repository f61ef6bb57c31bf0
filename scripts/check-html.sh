#!/usr/bin/env bash
# Validates every public page, in each state, the staff sign-in and dashboard, and every mail's HTML part
# with the W3C Nu HTML checker (npm package vnu-jar, run on Java). Uses the binary
# `cargo test` already built; run after it (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/debug/newsletter}
[ -x "$BIN" ] || cargo build --quiet
BIN=$(realpath "$BIN")
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
(cd "$WORK" && RUST_LOG=info SIGNUP_FORM_MIN_SECONDS=0 BIND_ADDRESS=127.0.0.1:$PORT exec "$BIN" serve > "$WORK/log" 2>&1) &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -fs "$URL/health" >/dev/null && break; sleep 0.1; done

mkdir "$WORK/pages"
cd "$WORK/pages"
curl -s "$URL/" > signup.html
form_token() { curl -s "$URL/subscriptions/form-token" | python3 -c 'import json, sys; print(json.load(sys.stdin)["form_token"])'; }
curl -s -X POST -d "email=bad&name=%3Cx%3E&locality=mars&form_token=$(form_token)" "$URL/subscriptions" > signup-errors.html
curl -s -X POST -d "email=check%40gmial.com&name=Check&consent=yes&form_token=$(form_token)" "$URL/subscriptions" > signup-did-you-mean.html
grep -q 'Did you mean' signup-did-you-mean.html || { echo "no suggestion for gmial.com" >&2; exit 1; }
curl -s -X POST -d "email=check%40example.org&name=Check&consent=yes&form_token=$(form_token)" "$URL/subscriptions" > check-inbox.html
for _ in $(seq 1 100); do ls "$WORK"/outbox/*.eml >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$(grep -o 'token=[A-Za-z0-9_-]\{43\}' "$WORK/log" | head -1 | cut -d= -f2)
curl -s "$URL/subscriptions/confirm?token=$TOKEN" > confirm.html
curl -s -X POST -d "token=$TOKEN" "$URL/subscriptions/confirm" > confirmed.html
curl -s -X POST -d "token=$TOKEN" "$URL/subscriptions/confirm" > already-confirmed.html
# Signing up again once subscribed: the already-subscribed mail (checked with the others).
curl -s -o /dev/null -X POST -d "email=check%40example.org&name=Check&consent=yes&form_token=$(form_token)" "$URL/subscriptions"
curl -s -X POST -d "token=garbage" "$URL/subscriptions/confirm" > bad-link.html

# An issue, written and sent through the staff API as staff would.
API_TOKEN=$(cd "$WORK" && "$BIN" admin create-token check 2>/dev/null | tail -1)
api() { curl -sf -H "Authorization: Bearer $API_TOKEN" -H 'content-type: application/json' "$@"; }
ISSUE=$(api -d '{"subject": "HTML check", "preheader": "Checking", "body_markdown": "## News\n\nRead [the partnership plan](https://example.org/) and see ![Volunteers at the hub](https://example.org/a.jpg)\n\n- one\n- two\n"}' \
  "$URL/api/issues" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api -d '{"send_at": "now"}' "$URL/api/issues/$ISSUE/schedule" >/dev/null
for _ in $(seq 1 100); do
  api "$URL/api/issues/$ISSUE" | grep -q '"status":"sent"' && break
  sleep 0.1
done
curl -s "$URL/archive" > archive.html
SLUG=$(grep -o 'href="/archive/[a-z0-9-]*"' archive.html | grep -v feed | head -1 | sed 's|href="/archive/||; s|"||')
curl -s "$URL/archive/$SLUG" > archive-issue.html

# The staff UI: sign-in, the dashboard, and the issue pages (list, editor with and
# without errors, a draft with its preview, a sent issue's report), subscribers, and
# an import (the form, with errors, its preview and its report).
(cd "$WORK" && echo "a long and memorable passphrase" | "$BIN" admin create-user check@example.org --role admin >/dev/null)
JAR=$WORK/cookies
curl -s -c "$JAR" "$URL/admin/login" > admin-login.html
CSRF=$(grep -o 'name="csrf" value="[^"]*"' admin-login.html | cut -d'"' -f4)
curl -s -b "$JAR" -c "$JAR" -d "email=check%40example.org&password=wrong&csrf=$CSRF" "$URL/admin/login" > admin-login-error.html
CSRF=$(grep -o 'name="csrf" value="[^"]*"' admin-login-error.html | cut -d'"' -f4)
curl -s -b "$JAR" -c "$JAR" -o /dev/null \
  -d "email=check%40example.org&password=a+long+and+memorable+passphrase&csrf=$CSRF" "$URL/admin/login"
curl -s -b "$JAR" "$URL/admin" > admin-dashboard.html
grep -q '<h1>Dashboard</h1>' admin-dashboard.html || { echo "could not sign in to the dashboard" >&2; exit 1; }
curl -s -b "$JAR" "$URL/admin/issues" > admin-issues.html
curl -s -b "$JAR" "$URL/admin/issues/new" > admin-issue-new.html
CSRF=$(grep -o 'name="csrf" value="[^"]*"' admin-issue-new.html | head -1 | cut -d'"' -f4)
curl -s -b "$JAR" -d "csrf=$CSRF&subject=&body_markdown=" "$URL/admin/issues" > admin-issue-errors.html
DRAFT=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' \
  -d "csrf=$CSRF&subject=A+draft&preheader=&body_markdown=Hello+**there**.&template=standard" "$URL/admin/issues")
DRAFT=${DRAFT%%\?*}
curl -s -b "$JAR" "$DRAFT" > admin-issue-draft.html
curl -s -b "$JAR" "$DRAFT/preview" > admin-issue-preview.html
curl -s -b "$JAR" -d "csrf=$CSRF&date=2020-01-01&time=09:00" "$DRAFT/schedule" > admin-issue-time-passed.html
grep -q 'That time has passed' admin-issue-time-passed.html || { echo "a past time was not refused" >&2; exit 1; }
curl -s -b "$JAR" -d "csrf=$CSRF" "$DRAFT/send-now" > admin-issue-send-now.html
grep -q 'Yes, send it now to' admin-issue-send-now.html || { echo "Send now did not ask" >&2; exit 1; }
curl -s -b "$JAR" "$URL/admin/issues/$ISSUE" > admin-issue-sent.html
curl -s -b "$JAR" "$URL/admin/subscribers?q=check" > admin-subscribers.html
SUBSCRIBER=$(grep -o 'href="/admin/subscribers/[0-9a-f-]*?list=[a-z0-9-]*"' admin-subscribers.html | head -1 | cut -d'"' -f2)
curl -s -b "$JAR" "$URL$SUBSCRIBER" > admin-subscriber.html
curl -s -b "$JAR" "$URL/admin/users" > admin-users.html
CSRF=$(grep -o 'name="csrf" value="[^"]*"' admin-users.html | head -1 | cut -d'"' -f4)
curl -s -b "$JAR" -d "csrf=$CSRF&name=HTML+check" "$URL/admin/tokens" > admin-tokens-made.html
curl -s -b "$JAR" -d "csrf=$CSRF&name=" "$URL/admin/tokens" > admin-tokens-error.html
curl -s -b "$JAR" "$URL/admin/imports" > admin-imports.html
curl -s -b "$JAR" -F "csrf=$CSRF" -F "source_note=x" "$URL/admin/imports" > admin-imports-errors.html
printf 'email,name,locality\nimported@example.org,Imported Person,Stroud\nbroken,Broken,\n' > "$WORK/people.csv"
IMPORT=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' -F "csrf=$CSRF" -F "mode=confirmed" \
  -F "source_note=Checking the HTML of the import pages" -F "file=@$WORK/people.csv;type=text/csv" "$URL/admin/imports")
curl -s -b "$JAR" "$IMPORT" > admin-import-preview.html
curl -s -b "$JAR" -o /dev/null -d "csrf=$CSRF" "${IMPORT%%\?*}/apply"
curl -s -b "$JAR" "${IMPORT%%\?*}?show=refused" > admin-import-report.html
grep -q 'Subscribed: 1' admin-import-report.html || { echo "the import did not apply" >&2; exit 1; }
# The Bounces page, with an entry on the suppression list, a message kept for a
# person (taken as an MTA's pipe would give it), and an import refused.
curl -s -b "$JAR" -o /dev/null -d "csrf=$CSRF&email=gone%40example.org&note=Left+the+council" "$URL/admin/suppressions"
printf 'From: someone@example.net\r\nSubject: A question\r\n\r\nHello\r\n' | (cd "$WORK" && "$BIN" bounces ingest)
curl -s -b "$JAR" "$URL/admin/bounces" > admin-bounces.html
grep -q 'an address at example.org' admin-bounces.html || { echo "the suppression was not listed" >&2; exit 1; }
curl -s -b "$JAR" -F "csrf=$CSRF" "$URL/admin/suppressions/import" > admin-bounces-error.html

# The brand and template pages (as they are, with errors, and a template's preview), an
# issue whose accessibility check has problems, and an issue in the announcement template.
curl -s -b "$JAR" "$URL/admin/brand" > admin-brand.html
curl -s -b "$JAR" -F "csrf=$CSRF" -F "newsletter=" -F "organisation=Check" -F "description=a check" \
  -F "header_colour=#ffdd00" -F "header_text_colour=#ffffff" -F "link_colour=navy" -F "signup_intro=Hi" \
  -F "consent_text=Yes" -F "privacy_url=www.example.org" "$URL/admin/brand" > admin-brand-errors.html
grep -q 'WCAG 2.2 AA needs' admin-brand-errors.html || { echo "a failing colour pair was not refused" >&2; exit 1; }
curl -s -b "$JAR" "$URL/admin/templates" > admin-templates.html
curl -s -b "$JAR" "$URL/admin/templates/announcement" > admin-template.html
curl -s -b "$JAR" --data-urlencode "csrf=$CSRF" --data-urlencode "html=<p>No way out" --data-urlencode "text=Hi" \
  "$URL/admin/templates/announcement" > admin-template-errors.html
grep -q 'needs the unsubscribe link' admin-template-errors.html || { echo "a template without its way out was saved" >&2; exit 1; }
curl -s -b "$JAR" "$URL/admin/templates/announcement/preview" > admin-template-preview.html
# The lists (with a second, public list, which the sign-up form then offers), a list's
# page, and the per-list pages; an issue to a segment, and its count.
curl -s -b "$JAR" -o /dev/null -d "csrf=$CSRF&name=Stroud+News&description=For+Stroud.&public=yes" "$URL/admin/lists"
curl -s -b "$JAR" "$URL/admin/lists" > admin-lists.html
curl -s -b "$JAR" -d "csrf=$CSRF&name=" "$URL/admin/lists" > admin-lists-errors.html
curl -s -b "$JAR" "$URL/admin/lists/stroud-news" > admin-list.html
curl -s -b "$JAR" "$URL/admin/subscribers?list=stroud-news" > admin-subscribers-list.html
curl -s "$URL/" > signup-lists.html
grep -q 'value="stroud-news"' signup-lists.html || { echo "the sign-up form does not offer the new list" >&2; exit 1; }
curl -s -X POST -d "email=check%40example.org&name=Check&consent=yes&choosing=yes&form_token=$(form_token)" "$URL/subscriptions" > signup-lists-errors.html
SEGMENTED=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' -d "csrf=$CSRF&subject=Stroud+only&body_markdown=For+Stroud.&template=standard&list=in-partnership&locality=stroud&locality=cheltenham&organisation=given" "$URL/admin/issues")
curl -s -b "$JAR" "${SEGMENTED%%\?*}" > admin-issue-segment.html
grep -q 'It would reach' admin-issue-segment.html || { echo "the editor does not count the segment" >&2; exit 1; }
TROUBLED=$(curl -s -b "$JAR" -o /dev/null -w '%{redirect_url}' --data-urlencode "csrf=$CSRF" --data-urlencode "subject=Troubled" \
  --data-urlencode "body_markdown=[Click here](https://example.org/) for ![IMG_0001.jpg](https://example.org/a.jpg)" \
  --data-urlencode "template=standard" "$URL/admin/issues")
curl -s -b "$JAR" "${TROUBLED%%\?*}" > admin-issue-preflight.html
grep -q 'Send it anyway' admin-issue-preflight.html || { echo "the preflight found nothing" >&2; exit 1; }
ANNOUNCEMENT=$(api -d '{"subject": "The hubs open on Monday", "template": "announcement", "body_markdown": "Every hub opens **on Monday**. Read [the opening times](https://example.org/)."}' \
  "$URL/api/issues" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api -d '{"send_at": "now"}' "$URL/api/issues/$ANNOUNCEMENT/schedule" >/dev/null
for _ in $(seq 1 100); do
  api "$URL/api/issues/$ANNOUNCEMENT" | grep -q '"status":"sent"' && break
  sleep 0.1
done

# Every mail's HTML part; the issue's unsubscribe page, from its List-Unsubscribe link.
python3 - "$WORK"/outbox/*.eml <<'PY'
import email, sys
from email import policy
for i, path in enumerate(sys.argv[1:]):
    msg = email.message_from_binary_file(open(path, "rb"), policy=policy.default)
    open(f"mail-{i}.html", "w").write(msg.get_body(preferencelist=("html",)).get_content())
    if msg["List-Unsubscribe"]:
        open("unsubscribe-url", "w").write(str(msg["List-Unsubscribe"]).split("<")[1].split(">")[0])
PY
curl -s "$(cat unsubscribe-url)" > unsubscribe.html
# The preference page from the same link, as it is, with errors, and after saving.
PREFERENCES="$(sed 's|/unsubscribe?|/preferences?|' unsubscribe-url)"
rm unsubscribe-url
curl -s "$PREFERENCES" > preferences.html
curl -s -d "name=&locality=mars&lists=nope" "$PREFERENCES" > preferences-errors.html
curl -s -d "name=Check&locality=stroud&lists=in-partnership&lists=stroud-news&action=save" "$PREFERENCES" > preferences-saved.html
grep -q 'Saved.' preferences-saved.html || { echo "the preference page did not save" >&2; exit 1; }
curl -s "$URL/preferences/request" > preferences-request.html
curl -s -X POST -d "email=nobody&form_token=$(form_token)" "$URL/preferences/request" > preferences-request-errors.html
curl -s -X POST -d "email=check%40example.org&form_token=$(form_token)" "$URL/preferences/request" > preferences-request-sent.html
# The fresh link the request mailed (it downloads and erases too), and the staff
# pages: an invitation (as sent, with errors, and its page), "forgot your password",
# the account page, and two-factor sign-in set up and then asked for.
curl -s -b "$JAR" -d "csrf=$CSRF&email=invited%40example.org&role=editor" "$URL/admin/users/invite" > admin-users-invited.html
curl -s -b "$JAR" -d "csrf=$CSRF&email=nobody&role=owner" "$URL/admin/users/invite" > admin-users-invite-errors.html
curl -s "$URL/admin/forgot" > admin-forgot.html
curl -s -d "email=check%40example.org" "$URL/admin/forgot" > admin-forgot-sent.html
for _ in $(seq 1 100); do
  grep -ls 'invitation?token=' "$WORK"/outbox/*.eml >/dev/null 2>&1 && grep -ls 'Manage your subscription' "$WORK"/outbox/*.eml >/dev/null 2>&1 && break
  sleep 0.1
done
python3 - "$WORK"/outbox/*.eml <<'PY'
import email, re, sys
from email import policy
for path in sys.argv[1:]:
    msg = email.message_from_binary_file(open(path, "rb"), policy=policy.default)
    text = msg.get_body(preferencelist=("plain",)).get_content()
    for name, pattern in [("invitation-url", r"\S+/admin/invitation\?token=\S+"),
                          ("manage-url", r"\S+/preferences\?token=\S+")]:
        found = re.search(pattern, text)
        if found and ("Manage your subscription" in str(msg["Subject"]) or name == "invitation-url"):
            open(name, "w").write(found.group(0))
PY
curl -s "$(cat invitation-url)" > admin-invitation.html
curl -s -d "password=short&confirm=other" "$(cat invitation-url)" > admin-invitation-errors.html
curl -s "$(cat manage-url)" > preferences-full.html
grep -q 'Erase everything' preferences-full.html || { echo "the fresh link does not offer erasure" >&2; exit 1; }
curl -s -d "" "$(cat manage-url | sed 's|/preferences?|/preferences/erase?|')" > preferences-erase-errors.html
rm invitation-url manage-url
curl -s -b "$JAR" "$URL/admin/account" > admin-account.html
curl -s -b "$JAR" -d "csrf=$CSRF&current=wrong&password=x&confirm=y" "$URL/admin/account/password" > admin-account-errors.html
curl -s -b "$JAR" "$URL/admin/account/two-factor" > admin-two-factor-setup.html
totp() {
  python3 -c 'import base64, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
tag = hmac.new(key, struct.pack(">q", int(time.time()) // 30 + int(sys.argv[2])), "sha1").digest()
o = tag[-1] & 15
print("%06d" % ((struct.unpack(">I", tag[o:o + 4])[0] & 0x7fffffff) % 1000000))' "$1" "$2"
}
SECRET=$(grep -o '<code class="secret">[^<]*' admin-two-factor-setup.html | sed 's/.*>//; s/ //g')
SEALED=$(grep -o 'name="sealed" value="[^"]*"' admin-two-factor-setup.html | cut -d'"' -f4)
curl -s -b "$JAR" -d "csrf=$CSRF&sealed=$SEALED&code=000000" "$URL/admin/account/two-factor" > admin-two-factor-setup-errors.html
curl -s -b "$JAR" -d "csrf=$CSRF&sealed=$SEALED&code=$(totp "$SECRET" 0)" "$URL/admin/account/two-factor" > admin-recovery-codes.html
grep -q 'Your recovery codes' admin-recovery-codes.html || { echo "two-factor sign-in was not set up" >&2; exit 1; }
curl -s -b "$JAR" -c "$JAR" -o /dev/null -d "csrf=$CSRF" "$URL/admin/logout"
LOGIN_CSRF=$(curl -s -b "$JAR" -c "$JAR" "$URL/admin/login" | grep -o 'name="csrf" value="[^"]*"' | cut -d'"' -f4)
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "email=check@example.org" --data-urlencode "password=a long and memorable passphrase" --data-urlencode "csrf=$LOGIN_CSRF" "$URL/admin/login"
curl -s -b "$JAR" "$URL/admin/login/two-factor" > admin-two-factor.html
grep -q 'The code from your authenticator app' admin-two-factor.html || { echo "the second step was not asked for" >&2; exit 1; }

# Errors fail the check. The mail's layout table keeps width/cellpadding/cellspacing/
# align attributes on purpose (Outlook ignores CSS widths); nothing else is filtered.
java -jar "$VNU_DIR/node_modules/vnu-jar/build/dist/vnu.jar" --errors-only --also-check-css \
  --filterpattern '.*The “(width|cellpadding|cellspacing|align)” attribute on the “(table|td)” element is obsolete.*' \
  ./*.html
echo "HTML check: $(ls ./*.html | wc -l) documents valid"
