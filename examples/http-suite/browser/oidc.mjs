// Headless Chromium signs up and signs in with an OpenID provider through the
// server-rendered UI of an identa host configured with it (provider id `test`, labelled
// "Test ID"): the provider's button on the host's pages, the provider's own login and
// consent pages typed into and submitted, the dashboard naming the account.
//
//   CHROMIUM=/usr/bin/chromium node oidc.mjs <public base URL> <admin base URL>
import assert from "node:assert/strict";
import { bodyText, clickAndWait, launchChromium, signOut } from "./chromium.mjs";

const [publicUrl] = process.argv.slice(2);
const login = `chromium-oidc-${Date.now()}@example.com`;
const button = 'button[name="provider"][value="test"]';

// From a page of the host, through the provider and back: the page the browser ends on.
async function throughTheProvider(page) {
  console.error(`at ${page.url()}: pressing the provider's button`);
  await clickAndWait(page, button);
  for (let i = 0; i < 6 && !page.url().startsWith(publicUrl); i++) {
    console.error(`at the provider: ${page.url()}`);
    if (await page.$('input[name="login"]')) {
      await page.type('input[name="login"]', login);
      await page.type('input[name="password"]', "any");
    }
    await clickAndWait(page, 'button[type="submit"]');
  }
  assert.ok(page.url().startsWith(publicUrl), `still at the provider: ${page.url()}`);
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();

  await page.goto(`${publicUrl}/ui/registration`, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/registration\?flow=/, page.url());
  let text = await bodyText(page);
  assert.ok(text.includes("Sign up with Test ID"), text);
  // The account is made and, the provider vouching for its address, signed in (the
  // example hosts' password sign-ups sign no one in; a vouched provider sign-up does).
  await throughTheProvider(page);
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  text = await bodyText(page);
  assert.ok(text.includes(login), text);
  await signOut(page);

  // Signed out here (on the sign-in page), still signed in at the provider: its button
  // signs in here.
  text = await bodyText(page);
  assert.ok(text.includes("Sign in with Test ID"), text);
  await throughTheProvider(page);
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  text = await bodyText(page);
  assert.ok(text.includes(login), text);
  assert.ok(text.includes("this session"), text);
  await signOut(page);
  await throughTheProvider(page);
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  console.log("chromium OpenID Connect sign-up, sign-out, sign-in: ok");
} finally {
  await browser.close();
}
