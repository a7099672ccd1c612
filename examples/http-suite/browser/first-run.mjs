// What a new user does after `cargo run -p identa-axum`: headless Chromium opens exactly the
// address the README gives, lands on the sign-in page, follows "Create an account", signs
// up, verifies the address with the code from the outbox, signs in and sees the dashboard. No JavaScript runs in the pages; puppeteer only types and
// clicks like a user.
//
//   CHROMIUM=/usr/bin/chromium node first-run.mjs http://localhost:4433/ui/ http://127.0.0.1:4434
import assert from "node:assert/strict";
import { clickAndWait, launchChromium, signUp } from "./chromium.mjs";

const [address, adminUrl] = process.argv.slice(2);
const email = `first-run-${Date.now()}@example.com`;

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const response = await page.goto(address, { waitUntil: "load" });
  assert.equal(response.status(), 200, `${address} answered ${response.status()}`);
  assert.match(page.url(), /\/ui\/login\?flow=/, `${address} led to ${page.url()}`);
  assert.equal(await page.title(), "Sign in · identa");

  await clickAndWait(page, 'a[href="/ui/registration"]');
  await signUp(page, email, "First Run", adminUrl);

  // Signed in, the same address is the dashboard.
  await page.goto(address, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  console.log(`chromium at ${address}: sign-in page, sign-up, dashboard: ok`);
} finally {
  await browser.close();
}
