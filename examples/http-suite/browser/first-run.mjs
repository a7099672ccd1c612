// What a new user does after `cargo run -p identa-axum`: headless Chromium opens exactly the
// address the README gives, lands on the sign-in page, follows "Create an account", signs
// up and sees the dashboard. No JavaScript runs in the pages; puppeteer only types and
// clicks like a user.
//
//   CHROMIUM=/usr/bin/chromium node first-run.mjs http://localhost:4433/ui/
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

const [address] = process.argv.slice(2);
const email = `first-run-${Date.now()}@example.com`;
const password = "a long and unusual passphrase";

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const response = await page.goto(address, { waitUntil: "load" });
  assert.equal(response.status(), 200, `${address} answered ${response.status()}`);
  assert.match(page.url(), /\/ui\/login\?flow=/, `${address} led to ${page.url()}`);
  assert.equal(await page.title(), "Sign in · identa");

  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click('a[href="/ui/registration"]'),
  ]);
  assert.match(page.url(), /\/ui\/registration\?flow=/, page.url());
  await page.type('input[name="traits.email"]', email);
  await page.type('input[name="traits.name"]', "First Run");
  await page.type('input[name="password"]', password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click('button[name="method"][value="password"]'),
  ]);
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(text.includes(email), text);
  assert.ok(text.includes("this session"), text);

  // Signed in, the same address is the dashboard.
  await page.goto(address, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  console.log(`chromium at ${address}: sign-in page, sign-up, dashboard: ok`);
} finally {
  await browser.close();
}
