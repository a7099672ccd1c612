// Headless Chromium links and unlinks OpenID provider accounts through the server-rendered
// UI of an identa host configured with two providers at one OpenID provider (ids `test`,
// "Test ID", and `other`, "Other ID"); each provider account's login is an email address,
// which the provider vouches for (`email_verified`).
//
// (a) A password account's owner signs in with the provider account of the same address:
//     the sign-in page asks them to sign in with the password (1010016); they do, and the
//     provider account is linked — a fresh browser then signs in with it alone, to the
//     same identity.
// (b) In settings, `Link Other ID` goes through the provider and back: settings shows its
//     unlink button; `Unlink Other ID` removes it, and the provider account no longer signs
//     in to the identity (a fresh browser is asked to link it again instead).
// (c) A provider-only account links a second provider, unlinks the first in another tab,
//     then presses the stale page's unlink button of the second: refused, the page says
//     why (4000001), and the last way to sign in stays.
//
//   CHROMIUM=/usr/bin/chromium node oidc-link.mjs <public base URL> <admin base URL>
import assert from "node:assert/strict";
import { bodyText, clickAndWait, launchChromium, password, signOut, signUp } from "./chromium.mjs";

const [publicUrl, adminUrl] = process.argv.slice(2);
const stamp = Date.now();
const button = (name, provider) => `button[name="${name}"][value="${provider}"]`;

// Presses `selector` on a page of the host, signs in at the provider as `login` (its
// login and consent pages, as they come) and returns once the browser is back here.
async function throughTheProvider(page, selector, login) {
  console.error(`at ${page.url()}: pressing ${selector}`);
  await clickAndWait(page, selector);
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

// The message ids the page shows (its messages' `data-id`).
const messageIds = (page) => page.$$eval("[data-id]", (all) => all.map((m) => Number(m.dataset.id)));

// `GET /sessions/whoami` in another tab of `page`'s browser context (its cookies).
async function whoami(page) {
  const tab = await page.browserContext().newPage();
  try {
    const res = await tab.goto(`${publicUrl}/sessions/whoami`, { waitUntil: "load" });
    return { status: res.status(), body: JSON.parse(await bodyText(tab)) };
  } finally {
    await tab.close();
  }
}

// The provider accounts the admin API lists for identity `id`.
async function linked(id) {
  const res = await fetch(`${adminUrl}/admin/identities/${id}`);
  assert.equal(res.status, 200, `the admin API answered ${res.status}`);
  return ((await res.json()).credentials?.oidc?.identifiers ?? []).sort();
}

// A new browser context (its own cookies) at the host's page `path`.
async function freshPage(path) {
  const page = await (await browser.createBrowserContext()).newPage();
  await page.goto(`${publicUrl}${path}`, { waitUntil: "load" });
  return page;
}

async function openSettings(page) {
  await page.goto(`${publicUrl}/ui/settings`, { waitUntil: "load" });
  assert.match(page.url(), /\/ui\/settings\?flow=/, page.url());
}

const browser = await launchChromium();
try {
  // (a) Linking after 1010016: the password proves the account is theirs.
  const ada = `chromium-link-${stamp}@example.com`;
  const page = await freshPage("/ui/registration");
  await signUp(page, ada, "Ada", adminUrl);
  const adaId = (await whoami(page)).body.identity.id;
  await signOut(page);
  await throughTheProvider(page, button("provider", "test"), ada);
  assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
  assert.deepEqual(await messageIds(page), [1010016]);
  let text = await bodyText(page);
  assert.ok(text.includes(`but that email is already used by another account`), text);
  assert.ok(text.includes("Test ID"), text);
  assert.equal((await whoami(page)).status, 401, "not signed in before the password");
  await page.$eval('input[name="identifier"]', (el) => (el.value = ""));
  await page.type('input[name="identifier"]', ada);
  await page.type('input[name="password"]', password);
  await clickAndWait(page, button("method", "password"));
  assert.match(page.url(), /\/ui\/dashboard$/, page.url());
  assert.equal((await whoami(page)).body.identity.id, adaId);
  assert.deepEqual(await linked(adaId), [`test:${ada}`]);

  const elsewhere = await freshPage("/ui/login");
  await throughTheProvider(elsewhere, button("provider", "test"), ada);
  assert.match(elsewhere.url(), /\/ui\/dashboard$/, elsewhere.url());
  let me = (await whoami(elsewhere)).body;
  assert.equal(me.identity.id, adaId, "the provider signs in to the linked identity");
  assert.equal(me.authentication_methods[0].method, "oidc");
  await elsewhere.browserContext().close();
  console.log("chromium OpenID Connect link after signing in with the password: ok");

  // (b) Link and unlink in settings.
  await openSettings(page);
  assert.ok(await page.$(button("unlink", "test")), "Test ID is linked");
  assert.equal(await page.$(button("unlink", "other")), null);
  await throughTheProvider(page, button("link", "other"), ada);
  assert.match(page.url(), /\/ui\/settings\?flow=/, page.url());
  assert.deepEqual(await messageIds(page), [1050001], "settings saved");
  assert.ok(await page.$(button("unlink", "other")), "an unlink button for Other ID");
  assert.equal(await page.$(button("link", "other")), null);
  assert.deepEqual(await linked(adaId), [`other:${ada}`, `test:${ada}`]);
  text = await bodyText(page);
  assert.ok(text.includes("Unlink Other ID"), text);

  await clickAndWait(page, button("unlink", "other"));
  assert.match(page.url(), /\/ui\/settings\?flow=/, page.url());
  assert.deepEqual(await messageIds(page), [1050001], "settings saved");
  assert.equal(await page.$(button("unlink", "other")), null);
  assert.ok(await page.$(button("link", "other")), "Other ID can be linked again");
  assert.deepEqual(await linked(adaId), [`test:${ada}`]);

  const unlinked = await freshPage("/ui/login");
  await throughTheProvider(unlinked, button("provider", "other"), ada);
  assert.match(unlinked.url(), /\/ui\/login\?flow=/, unlinked.url());
  assert.deepEqual(await messageIds(unlinked), [1010016], "asked to link it again");
  assert.equal((await whoami(unlinked)).status, 401, "the unlinked account signs in to nothing");
  await unlinked.browserContext().close();
  console.log("chromium OpenID Connect link and unlink in settings: ok");

  // (c) The last way to sign in cannot be unlinked.
  const kim = `chromium-provider-only-${stamp}@example.com`;
  const tab = await freshPage("/ui/registration");
  await throughTheProvider(tab, button("provider", "test"), kim);
  assert.match(tab.url(), /\/ui\/dashboard$/, `a vouched provider sign-up signs in: ${tab.url()}`);
  const kimId = (await whoami(tab)).body.identity.id;
  await openSettings(tab);
  assert.equal(await tab.$(button("unlink", "test")), null, "no unlink for the only way in");
  await throughTheProvider(tab, button("link", "other"), kim);
  assert.deepEqual(await messageIds(tab), [1050001], "settings saved");
  assert.ok(await tab.$(button("unlink", "test")));
  assert.ok(await tab.$(button("unlink", "other")));

  const second = await tab.browserContext().newPage();
  await openSettings(second);
  await clickAndWait(second, button("unlink", "test"));
  assert.deepEqual(await messageIds(second), [1050001], "settings saved");
  assert.equal(await second.$(button("unlink", "other")), null, "no unlink for the last one");
  await second.close();

  await clickAndWait(tab, button("unlink", "other"));
  assert.match(tab.url(), /\/ui\/settings\?flow=/, tab.url());
  assert.deepEqual(await messageIds(tab), [4000001]);
  text = await bodyText(tab);
  assert.ok(text.includes("it is the last remaining first factor credential"), text);
  assert.deepEqual(await linked(kimId), [`other:${kim}`], "the last way in stays");
  me = (await whoami(tab)).body;
  assert.equal(me.identity.id, kimId, "still signed in");
  console.log("chromium OpenID Connect the last way to sign in is not unlinked: ok");
} finally {
  await browser.close();
}
