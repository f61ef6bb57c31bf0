// Browser tests in headless Chromium (Debian's), driven by Playwright: a member of
// staff signs in, writes an issue, previews it, schedules it and watches the progress
// bar reach the end against a real SMTP server; an admin imports a CSV file; an image
// goes into an issue and a new brand colour and logo into its preview; the editor's
// count follows a segment; a reader changes their locality on their preference page;
// an invited editor makes their account, turns on two-factor sign-in and resets a
// forgotten password; and axe-core
// finds no serious or critical accessibility problem on the public and staff pages, or
// in a mail in each shipped template at phone and desktop widths. With SCREENSHOTS set
// to a folder, the mails are photographed there.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");
const { startSmtp } = require("./smtp.js");

const BIN = process.env.NEWSLETTER_BIN;
const PASSWORD = "a long and memorable passphrase";
const READERS = 12;
let smtp, app, url, work, browser;

function freePort() {
  return new Promise((resolve) => {
    const server = require("node:net").createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = server.address().port;
      server.close(() => resolve(port));
    });
  });
}

async function until(what, check, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/// A PNG of one colour, `width` by `height`.
function png(width, height, [r, g, b]) {
  const zlib = require("node:zlib");
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(width).fill([r, g, b]).flat())]);
  const pixels = zlib.deflateSync(Buffer.concat(Array(height).fill(row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header), chunk("IDAT", pixels), chunk("IEND", Buffer.alloc(0)),
  ]);
}

/// The confirmation link in a message, with quoted-printable undone.
function confirmationToken(message) {
  const text = message.data.replace(/=\r\n/g, "").replace(/=3D/g, "=");
  return text.match(/token=([A-Za-z0-9_-]{43})/)[1];
}

before(async () => {
  smtp = await startSmtp();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "newsletter-browser-"));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    DATABASE_URL: `sqlite://${work}/newsletter.db`,
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    ALLOW_INSECURE_PUBLIC_URL: "true",
    BIND_ADDRESS: `127.0.0.1:${port}`,
    // A few copies a second, so the progress bar has something to show.
    MAIL_RATE_PER_SECOND: "2",
    // The readers sign up from a script, at once: no wait for the form token.
    SIGNUP_FORM_MIN_SECONDS: "0",
    RUST_LOG: "warn",
  };
  app = spawn(BIN, ["serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
  await until("the app to listen", async () => {
    try { return (await fetch(`${url}/health`)).ok; } catch { return false; }
  });
  execFileSync(BIN, ["admin", "create-user", "staff@example.org", "--role", "admin"], {
    env, input: `${PASSWORD}\n`,
  });
  for (let i = 0; i < READERS; i++) {
    const email = `reader${i}@example.org`;
    const { form_token } = await (await fetch(`${url}/subscriptions/form-token`)).json();
    const body = new URLSearchParams({ email, name: `Reader ${i}`, consent: "yes", form_token });
    assert.equal((await fetch(`${url}/subscriptions`, { method: "POST", body })).status, 200);
    await until(`the confirmation for ${email}`, () => smtp.messages.some((m) => m.to.includes(email)));
    const token = confirmationToken(smtp.messages.find((m) => m.to.includes(email)));
    const confirmed = await fetch(`${url}/subscriptions/confirm`, {
      method: "POST", body: new URLSearchParams({ token }),
    });
    assert.equal(confirmed.status, 200);
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (app) app.kill();
  if (smtp) smtp.server.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function signIn(page) {
  await page.goto(`${url}/admin`);
  assert.match(page.url(), /\/admin\/login$/);
  await page.getByLabel("Email address").fill("staff@example.org");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${url}/admin`);
}

test("staff write, preview, schedule and watch an issue go out", async () => {
  const page = await browser.newPage();
  await signIn(page);
  await page.getByRole("link", { name: "Issues", exact: true }).click();
  await page.getByRole("link", { name: "Write a new issue" }).click();
  await page.getByLabel("Subject").fill("Winter 2026");
  await page.getByLabel("Body").fill("## This quarter\n\nHello **everyone**, from the [partnership](https://example.org).");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=saved/);
  assert.equal(await page.locator(".notice").innerText(), "Saved.");

  const preview = page.frameLocator("iframe.preview");
  assert.match(await preview.locator("body").innerText(), /Hello everyone, from the partnership\./);
  assert.equal(await preview.locator("strong").innerText(), "everyone");

  // A time that has passed is refused, never taken to mean now.
  await page.getByLabel("Date").fill("2020-01-01");
  await page.getByLabel("Time").fill("09:00");
  await page.getByRole("button", { name: "Schedule" }).click();
  assert.match(await page.getByRole("alert").innerText(), /That time has passed/);

  // Send now asks once more, saying how many people it goes to.
  await page.getByRole("button", { name: "Send now…" }).click();
  const question = page.getByRole("heading", { level: 1 });
  assert.equal(await question.innerText(), "Send “Winter 2026” now?");
  await page.getByRole("button", { name: `Yes, send it now to ${READERS} people` }).click();
  await page.waitForURL(/done=sending/);

  // Copies go at two a second, so the send takes seconds: the bar is there, and moves
  // by itself.
  await page.reload();
  const bar = page.locator("progress#progress");
  assert.equal(await bar.getAttribute("max"), String(READERS));
  await page.waitForFunction(() => {
    const bar = document.getElementById("progress");
    return !bar || (bar.value > 0 && bar.value === bar.max);
  }, null, { timeout: 30_000 });
  // When the send ends, the page's script reloads it into the report.
  await bar.waitFor({ state: "detached", timeout: 30_000 });
  assert.match(await page.locator("p", { hasText: "Status:" }).innerText(), /Status: sent/);
  const report = await page.locator("table").first().innerText();
  assert.match(report, new RegExp(`${READERS}\\s+${READERS}\\s+0`), report);
  await until("every copy to arrive", () =>
    smtp.messages.filter((m) => /Subject: Winter 2026/.test(m.data)).length === READERS);
  await page.close();
});

test("an admin imports people from a CSV file, after a preview", async () => {
  const page = await browser.newPage();
  await signIn(page);
  await page.getByRole("link", { name: "Subscribers", exact: true }).click();
  await page.getByRole("link", { name: "Import people from a CSV file" }).click();
  await page.getByLabel("The CSV file").setInputFiles({
    name: "assembly.csv",
    mimeType: "text/csv",
    buffer: Buffer.from(
      "Email,Name,Organisation,Locality\n" +
      "imported1@example.org,Imported One,Stroud Hub,Stroud\n" +
      "imported2@example.org,Imported Two,,Forest of Dean\n" +
      "not an address,Broken Row,,\n"),
  });
  await page.getByLabel("Where these people’s details came from").fill(
    "Delegates of the 2026 VCSE Assembly who asked for the newsletter");
  await page.getByLabel("Subscribe them now").check();
  await page.getByRole("button", { name: "Check the file" }).click();
  await page.waitForURL(/\/admin\/imports\/[0-9a-f-]{36}$/);
  assert.equal(await page.locator("h1").innerText(), "Import preview: assembly.csv");
  const counts = await page.locator("main ul").first().innerText();
  assert.match(counts, /To import: 2/);
  assert.match(counts, /Refused: 1/);
  assert.match(await page.locator("table").innerText(), /“not an address” is not an email address\./);

  await page.getByRole("button", { name: "Subscribe 2 people" }).click();
  await page.waitForURL(/done=applied/);
  assert.equal(await page.locator("h1").innerText(), "Import report: assembly.csv");
  assert.match(await page.locator("main ul").first().innerText(), /Subscribed: 2/);

  await page.goto(`${url}/admin/subscribers?q=imported`);
  assert.match(await page.locator("main").innerText(), /1 to 2 of 2 matching/);
  await page.getByRole("link", { name: "imported1@example.org" }).click();
  assert.match(await page.locator("table").innerText(),
    /import\s+import\s+Imported: Delegates of the 2026 VCSE Assembly/);
  await page.close();
});

test("an image goes into an issue, and a new brand colour and logo into its preview", async () => {
  const page = await browser.newPage();
  await signIn(page);
  await page.goto(`${url}/admin/issues/new`);
  await page.getByLabel("Subject").fill("Spring 2027");
  await page.getByLabel("Body").fill("## Hubs\n\nThe Cinderford hub opened in March.");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=saved/);

  // The editor's script uploads it and puts it where the cursor was, unsaved.
  await page.getByLabel("Image file").setInputFiles({
    name: "hub.png", mimeType: "image/png", buffer: png(1600, 900, [40, 120, 80]),
  });
  await page.getByLabel("What the image shows").fill("Volunteers outside the Cinderford hub");
  await page.getByRole("button", { name: "Upload and add to the body" }).click();
  await page.getByText("The image is in the body where the cursor was").waitFor();
  const body = await page.getByLabel("Body").inputValue();
  assert.match(body, /!\[Volunteers outside the Cinderford hub\]\(\/media\/[0-9a-f]{64}-1200x675\.png\)/, body);
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=saved/);
  const issue = page.url().replace(/\?.*$/, "");
  const photo = page.frameLocator("iframe.preview").getByAltText("Volunteers outside the Cinderford hub");
  await until("the photo to load in the preview", () =>
    photo.evaluate((img) => img.complete && img.naturalWidth === 1200));
  assert.equal(await photo.getAttribute("height"), "311");

  // A colour pair under AA is refused with its ratio; then a dark header and a logo.
  await page.getByRole("link", { name: "Brand", exact: true }).click();
  await page.getByLabel("Header colour").fill("#ffdd00");
  await page.getByRole("button", { name: "Save" }).click();
  assert.match(await page.getByRole("alert").innerText(), /\(#ffffff on #ffdd00\) is 1\.34 to 1/);
  await page.getByLabel("Header colour").fill("#0b0c0c");
  await page.getByLabel("Logo (optional)").setInputFiles({
    name: "logo.png", mimeType: "image/png", buffer: png(400, 100, [255, 221, 0]),
  });
  await page.getByLabel("What the logo says").fill("Cinderford Partners");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=saved/);
  assert.match(await page.getByRole("status").innerText(), /Saved/);

  await page.goto(issue);
  const preview = page.frameLocator("iframe.preview");
  const logo = preview.getByAltText("Cinderford Partners");
  await until("the logo to load in the preview", () =>
    logo.evaluate((img) => img.complete && img.naturalWidth === 400));
  const header = await logo.evaluate((img) => getComputedStyle(img.closest("td")).backgroundColor);
  assert.equal(header, "rgb(11, 12, 12)");
  assert.ok(await preview.getByAltText("Volunteers outside the Cinderford hub").isVisible());
  await page.close();
});

/// axe-core's serious and critical findings on the page at `address` (or on the page
/// as it is, without one). The page's context must bypass CSP to let the checker in.
async function seriousProblems(page, address) {
  const axe = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  if (address) await page.goto(address);
  await page.addScriptTag({ content: axe });
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return results.violations
    .filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

/// The preference page's address in reader `i`'s welcome mail.
function preferencesLink(i) {
  const welcome = smtp.messages.find((m) => m.to.includes(`reader${i}@example.org`) && /Subject: Welcome/.test(m.data));
  const text = welcome.data.replace(/=\r\n/g, "").replace(/=3D/g, "=");
  return text.match(/(\/preferences\?token=[A-Za-z0-9_-]+)/)[1];
}

/// What the editor's count says for the segment ticked now, once it has said it.
async function countFor(page, words) {
  const reach = page.locator("#reach");
  let said = "";
  await until(`the count ${words}`, async () => {
    said = await reach.innerText();
    return said.includes(words);
  });
  return Number(said.match(/It would reach (\d+) (person|people)/)[1]);
}

test("the editor says how many people a segment reaches as it changes", async () => {
  const page = await browser.newPage();
  await signIn(page);
  await page.goto(`${url}/admin/issues/new`);
  assert.equal(await page.locator("#reach").getAttribute("aria-live"), "polite");
  await page.getByLabel("Stroud").check();
  const stroud = await countFor(page, "on In Partnership (in Stroud)");
  await page.getByLabel("People who are").selectOption("not_in");
  const elsewhere = await countFor(page, "on In Partnership (not in Stroud)");
  await page.getByLabel("Stroud").uncheck();
  const everyone = await countFor(page, "on In Partnership if it went now");
  assert.equal(stroud + elsewhere, everyone);
  assert.ok(everyone >= READERS, `${everyone}`);
  await page.close();
});

test("a reader changes their details and newsletters from the link in their mail", async () => {
  const staff = await browser.newPage();
  await signIn(staff);
  await staff.goto(`${url}/admin/issues/new`);
  await staff.getByLabel("Stroud").check();
  const before = await countFor(staff, "(in Stroud)");

  const page = await browser.newPage();
  await page.goto(`${url}${preferencesLink(1)}`);
  assert.equal(await page.getByRole("heading", { level: 1 }).innerText(), "Your subscription");
  assert.equal(await page.getByLabel("Your name").inputValue(), "Reader 1");
  await page.getByLabel("Where you mostly work (optional)").selectOption("stroud");
  await page.getByRole("button", { name: "Save" }).click();
  assert.match(await page.locator(".notice").innerText(), /Saved/);
  assert.equal(await page.getByLabel("Where you mostly work (optional)").inputValue(), "stroud");
  await page.close();

  // Now the editor's count for Stroud finds them.
  await staff.reload();
  await staff.getByLabel("Stroud").uncheck();
  await staff.getByLabel("Stroud").check();
  await until("the count to find the reader in Stroud", async () =>
    (await staff.locator("#reach").innerText()).includes(`reach ${before + 1} `));
  await staff.close();
});

/// The link to `path` in the newest mail to `to` whose subject has `subject`.
function linkIn(to, subject, path) {
  const mail = smtp.messages.filter((m) => m.to.includes(to) && m.data.includes(subject)).pop();
  const text = mail.data.replace(/=\r\n/g, "").replace(/=3D/g, "=");
  return text.match(new RegExp(`(${path}\\?token=[A-Za-z0-9_-]+)`))[1];
}

/// The RFC 6238 code for a base32 secret (as the setup page shows it) now.
function totp(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...secret.replace(/\s/g, "")].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const mac = crypto.createHmac("sha1", key).update(counter).digest();
  const at = mac[19] & 0xf;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1000000).padStart(6, "0");
}

test("an invited editor makes their account, turns on two-factor sign-in and resets a forgotten password", async () => {
  const context = await browser.newContext({ bypassCSP: true });
  const admin = await context.newPage();
  await signIn(admin);
  await admin.goto(`${url}/admin/users`);
  await admin.getByLabel("Their email address").fill("new.editor@example.org");
  await admin.getByLabel("Editor: writes, previews and sends issues").check();
  await admin.getByRole("button", { name: "Send the invitation" }).click();
  assert.match(await admin.locator(".notice").innerText(), /new.editor@example.org/);
  await until("the invitation", () => smtp.messages.some((m) => m.to.includes("new.editor@example.org")));
  await admin.close();

  const editor = await browser.newContext({ bypassCSP: true });
  const page = await editor.newPage();
  const invitation = linkIn("new.editor@example.org", "Subject: You are invited", "/admin/invitation");
  assert.deepEqual(await seriousProblems(page, `${url}${invitation}`), [], "the invitation page");
  await page.getByLabel("Password", { exact: true }).fill("a long pass phrase for the editor");
  await page.getByLabel("The password again").fill("a long pass phrase for the editor");
  await page.getByRole("button", { name: "Make my account" }).click();
  await page.waitForURL(`${url}/admin`);

  // Two-factor sign-in, from their account page.
  await page.goto(`${url}/admin/account/two-factor`);
  const secret = await page.locator("code.secret").innerText();
  await page.getByLabel("The code from your app").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on two-factor sign-in" }).click();
  assert.equal(await page.getByRole("heading", { level: 1 }).innerText(), "Your recovery codes");
  assert.deepEqual(await seriousProblems(page), [], "the recovery codes page");
  const codes = await page.locator(".recovery-codes code").allInnerTexts();
  assert.equal(codes.length, 10);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(`${url}/admin/login`);
  await page.getByLabel("Email address").fill("new.editor@example.org");
  await page.getByLabel("Password").fill("a long pass phrase for the editor");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${url}/admin/login/two-factor`);
  assert.deepEqual(await seriousProblems(page), [], "the second step of signing in");
  // The code just used works once: a recovery code signs them in.
  await page.getByLabel("The code from your authenticator app").fill(codes[0]);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${url}/admin`);
  await editor.close();

  // A forgotten password: the same answer for any address, a link to the one with an account.
  const forgot = await (await browser.newContext({ bypassCSP: true })).newPage();
  await forgot.goto(`${url}/admin/login`);
  await forgot.getByRole("link", { name: "Forgot your password?" }).click();
  await forgot.getByLabel("Email address").fill("new.editor@example.org");
  await forgot.getByRole("button", { name: "Email me a link" }).click();
  await until("the reset link", () => smtp.messages.some((m) =>
    m.to.includes("new.editor@example.org") && m.data.includes("Subject: Reset your password")));
  const reset = linkIn("new.editor@example.org", "Subject: Reset your password", "/admin/reset");
  assert.deepEqual(await seriousProblems(forgot, `${url}${reset}`), [], "the reset page");
  await forgot.getByLabel("Password", { exact: true }).fill("another long pass phrase");
  await forgot.getByLabel("The password again").fill("another long pass phrase");
  await forgot.getByRole("button", { name: "Save my new password" }).click();
  await forgot.waitForURL(`${url}/admin/login?reset=done`);
  await forgot.close();
  await context.close();
});

test("a form with errors puts the focus on its error summary", async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  // People take a moment to fill it in; the form is refused if sent within two seconds.
  await page.waitForTimeout(2100);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForSelector(".error-summary");
  // The page's script moves the focus once the page has loaded: wait for it, briefly.
  await page.waitForFunction(
    () => document.activeElement.classList.contains("error-summary"), null, { timeout: 5000 });
  assert.match(await page.getByRole("alert").innerText(), /There is a problem/);
  await page.close();
});

test("the public and staff pages have no serious accessibility problems", async () => {
  // Our pages forbid scripts they do not serve; the checker is let in for the test only.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  for (const address of [`${url}/`, `${url}/admin/login`, `${url}/preferences/request`,
    `${url}/admin/forgot`]) {
    assert.deepEqual(await seriousProblems(page, address), [], address);
  }
  await signIn(page);
  const issue = await page.evaluate(async () => {
    const html = await (await fetch("/admin/issues")).text();
    return html.match(/href="(\/admin\/issues\/[0-9a-f-]{36})"/)[1];
  });
  const subscriber = await page.evaluate(async () => {
    const html = await (await fetch("/admin/subscribers")).text();
    return html.match(/href="(\/admin\/subscribers\/[0-9a-f-]{36}\?list=[a-z0-9-]+)"/)[1];
  });
  const anImport = await page.evaluate(async () => {
    const html = await (await fetch("/admin/imports")).text();
    return html.match(/href="(\/admin\/imports\/[0-9a-f-]{36})"/)[1];
  });
  for (const address of ["/admin", "/admin/issues", "/admin/issues/new", issue,
    "/admin/subscribers", subscriber, "/admin/imports", anImport, "/admin/users",
    "/admin/tokens", "/admin/brand", "/admin/templates", "/admin/templates/standard",
    "/admin/templates/announcement", "/admin/lists", "/admin/lists/in-partnership",
    "/admin/account", "/admin/account/two-factor", preferencesLink(0)]) {
    assert.deepEqual(await seriousProblems(page, `${url}${address}`), [], address);
  }
  // The page from the link mailed on request: downloading and erasing too.
  await page.goto(`${url}${preferencesLink(2)}`);
  await page.getByRole("button", { name: "Email me that link" }).click();
  await until("the link mail", () => smtp.messages.some((m) =>
    m.to.includes("reader2@example.org") && m.data.includes("Subject: Manage your subscription")));
  const full = linkIn("reader2@example.org", "Subject: Manage your subscription", "/preferences");
  assert.deepEqual(await seriousProblems(page, `${url}${full}`), [], "the full preference page");
  assert.ok(await page.getByRole("button", { name: "Erase everything" }).isVisible());

  await context.close();
});

test("a mail in each shipped template has no serious accessibility problems, on a phone or a desktop", async () => {
  const shots = process.env.SCREENSHOTS;
  if (shots) fs.mkdirSync(shots, { recursive: true });
  for (const [device, viewport] of [["phone", { width: 375, height: 812 }], ["desktop", { width: 1280, height: 900 }]]) {
    const context = await browser.newContext({ bypassCSP: true, viewport });
    const page = await context.newPage();
    await signIn(page);
    for (const template of ["standard", "announcement"]) {
      const address = `${url}/admin/templates/${template}/preview`;
      assert.deepEqual(await seriousProblems(page, address), [], `${template} on a ${device}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${template} is wider than a ${device} by ${overflow}px`);
      if (shots) await page.screenshot({ path: path.join(shots, `${template}-${device}.png`), fullPage: true });
    }
    await context.close();
  }
});
