// What the browser scripts share: headless Chromium launched one way, the suite's
// password, and the UI's pages used as a person uses them (type, click, wait).
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

export const password = "a long and unusual passphrase";

// Headless Chromium ($CHROMIUM, else Debian's /usr/bin/chromium), with `extraArgs`.
export function launchChromium(extraArgs = []) {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", ...extraArgs],
  });
}

export const bodyText = (page) => page.evaluate(() => document.body.innerText);

// Clicks `selector` and waits for the page the click leads to.
export async function clickAndWait(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
}

// The code in the newest mail to `email`, read from the host's outbox (its admin API at
// `adminUrl`), as a person reads it in their mailbox.
export async function mailedCode(adminUrl, email) {
  const res = await fetch(`${adminUrl}/admin/courier/messages`);
  assert.equal(res.status, 200, `the outbox answered ${res.status}`);
  const mail = (await res.json()).find((m) => m.recipient === email);
  assert.ok(mail, `no mail to ${email}`);
  const code = mail.body.match(/(?<!\d)\d{6}(?!\d)/)?.[0];
  assert.ok(code, mail.body);
  return code;
}

// Verifies `email` on the UI's verification page with the code mailed to it, then opens
// the sign-in page.
export async function verifyAddress(page, adminUrl, email) {
  const origin = new URL(page.url()).origin;
  await page.goto(`${origin}/ui/verification`, { waitUntil: "load" });
  await page.type('input[name="email"]', email);
  await clickAndWait(page, 'button[name="method"][value="code"]');
  await page.type('input[name="code"]', await mailedCode(adminUrl, email));
  await clickAndWait(page, 'button[name="method"][value="code"]');
  await page.goto(`${origin}/ui/login`, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
}

// Signs up with a password on the registration page the browser shows; checks that it
// leads to the sign-in page (the example hosts' registration is enumeration-safe: it signs
// no one in, and sign-in waits for a verified address), verifies the address with the code
// mailed (read through the admin API at `adminUrl`), signs in, and checks that this leads
// to the dashboard, which names the account and this session.
export async function signUp(page, email, name, adminUrl) {
  assert.match(page.url(), /\/ui\/registration\?flow=/, page.url());
  await page.type('input[name="traits.email"]', email);
  await page.type('input[name="traits.name"]', name);
  await page.type('input[name="password"]', password);
  await clickAndWait(page, 'button[name="method"][value="password"]');
  assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
  await verifyAddress(page, adminUrl, email);
  await page.type('input[name="identifier"]', email);
  await page.type('input[name="password"]', password);
  await clickAndWait(page, 'button[name="method"][value="password"]');
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  const text = await bodyText(page);
  assert.ok(text.includes(email), text);
  assert.ok(text.includes("this session"), text);
}

// Follows the page's "Sign out" link; checks that it leads to the sign-in page.
export async function signOut(page) {
  const logout = await page.evaluate(
    () => [...document.querySelectorAll("a")].find((a) => a.textContent.includes("Sign out"))?.href,
  );
  assert.ok(logout, "a sign-out link");
  await page.goto(logout, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
}
