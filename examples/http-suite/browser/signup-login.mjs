// Headless Chromium signs up, signs out, signs in and sees the dashboard through the
// server-rendered UI of an identa host. No JavaScript runs in the pages; puppeteer only
// types and clicks like a user.
//
//   CHROMIUM=/usr/bin/chromium node signup-login.mjs <public base URL>
import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";

const [publicUrl] = process.argv.slice(2);
const email = `chromium-${Date.now()}@example.com`;
const password = "a long and unusual passphrase";

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const submit = async (selector) => {
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click(selector)]);
  };

  // Sign up.
  await page.goto(`${publicUrl}/ui/registration`, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/registration\?flow=/);
  await page.type('input[name="traits.email"]', email);
  await page.type('input[name="traits.name"]', "Chromium");
  await page.type('input[name="password"]', password);
  await submit('button[name="method"][value="password"]');
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  let text = await page.evaluate(() => document.body.innerText);
  assert.ok(text.includes(email), text);
  assert.ok(text.includes("this session"), text);

  // Sign out.
  const logout = await page.evaluate(
    () => [...document.querySelectorAll("a")].find((a) => a.textContent.includes("Sign out"))?.href,
  );
  assert.ok(logout, "a sign-out link");
  await page.goto(logout, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/login\?flow=/, page.url());

  // A wrong password first, then the right one.
  await page.type('input[name="identifier"]', email);
  await page.type('input[name="password"]', "not the password");
  await submit('button[name="method"][value="password"]');
  text = await page.evaluate(() => document.body.innerText);
  assert.ok(text.includes("The provided credentials are invalid"), text);
  await page.$eval('input[name="password"]', (el) => (el.value = ""));
  await page.type('input[name="password"]', password);
  await submit('button[name="method"][value="password"]');
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  text = await page.evaluate(() => document.body.innerText);
  assert.ok(text.includes(email), text);
  console.log("chromium sign-up, sign-out, sign-in: ok");
} finally {
  await browser.close();
}
