// Headless Chromium signs up, signs out, signs in and sees the dashboard through the
// server-rendered UI of an identa host. No JavaScript runs in the pages; puppeteer only
// types and clicks like a user.
//
//   CHROMIUM=/usr/bin/chromium node signup-login.mjs <public base URL> <admin base URL>
import assert from "node:assert/strict";
import { bodyText, clickAndWait, launchChromium, password, signOut, signUp } from "./chromium.mjs";

const [publicUrl, adminUrl] = process.argv.slice(2);
const email = `chromium-${Date.now()}@example.com`;
const signIn = 'button[name="method"][value="password"]';

const browser = await launchChromium();
try {
  const page = await browser.newPage();

  await page.goto(`${publicUrl}/ui/registration`, { waitUntil: "load" });
  await signUp(page, email, "Chromium", adminUrl);
  await signOut(page);

  // A wrong password first, then the right one.
  await page.type('input[name="identifier"]', email);
  await page.type('input[name="password"]', "not the password");
  await clickAndWait(page, signIn);
  let text = await bodyText(page);
  assert.ok(text.includes("The provided credentials are invalid"), text);
  await page.$eval('input[name="password"]', (el) => (el.value = ""));
  await page.type('input[name="password"]', password);
  await clickAndWait(page, signIn);
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  text = await bodyText(page);
  assert.ok(text.includes(email), text);
  console.log("chromium sign-up, sign-out, sign-in: ok");
} finally {
  await browser.close();
}
