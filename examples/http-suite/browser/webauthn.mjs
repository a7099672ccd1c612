// Headless Chromium with a virtual authenticator (the DevTools WebAuthn domain) runs
// security-key and passkey ceremonies through the server-rendered UI of an identa host.
// Here the pages' own script (/.well-known/ory/webauthn.js) does the work: puppeteer
// only types and clicks like a user, and the virtual authenticator answers the browser.
//
//   CHROMIUM=/usr/bin/chromium node webauthn.mjs <public base URL> <admin base URL>
import assert from "node:assert/strict";
import { bodyText, launchChromium, password, signOut, verifyAddress } from "./chromium.mjs";

const [publicUrl, adminUrl] = process.argv.slice(2);
const stamp = Date.now();

const browser = await launchChromium([
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
]);

// A page in a fresh browser context (its own cookies) with its own authenticator: a
// platform authenticator that holds discoverable credentials and verifies its user.
async function freshPage() {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const problems = [];
  page.on("dialog", async (dialog) => {
    problems.push(dialog.message());
    await dialog.dismiss();
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(msg.text());
  });
  const cdp = await page.createCDPSession();
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const credentials = async () =>
    (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  return { page, problems, credentials };
}

// Clicks and waits for the page the click leads to; a dialog or script error (the
// ceremony failed) is reported instead of a timeout.
async function navigate(page, problems, click) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load", timeout: 15000 }), click()]).catch(
    (err) => {
      throw new Error(`${err.message}; page said: ${problems.join(" | ") || "nothing"}`);
    },
  );
  assert.deepEqual(problems, [], "no alert and no script error");
}

// An element of one method group's form, found by the heading the UI gives that form.
async function inForm(page, heading, selector) {
  const handle = await page.evaluateHandle(
    (heading, selector) =>
      [...document.querySelectorAll("form")]
        .find((f) => f.querySelector("h2")?.textContent === heading)
        ?.querySelector(selector),
    heading,
    selector,
  );
  const element = handle.asElement();
  assert.ok(element, `${selector} in the "${heading}" form of ${page.url()}`);
  return element;
}

// Signs out from the dashboard (or the second-factor step it sends a session to that
// has not used its second factor).
async function signOutFromDashboard(page) {
  await page.goto(`${publicUrl}/ui/dashboard`, { waitUntil: "load" });
  await signOut(page);
}

try {
  // --- A security key as the second factor -------------------------------------------
  {
    const { page, problems, credentials } = await freshPage();
    const email = `key-${stamp}@example.com`;
    await page.goto(`${publicUrl}/ui/registration`, { waitUntil: "load" });
    await (await inForm(page, "Password", 'input[name="traits.email"]')).type(email);
    await (await inForm(page, "Password", 'input[name="password"]')).type(password);
    await navigate(page, problems, async () =>
      (await inForm(page, "Password", 'button[name="method"][value="password"]')).click(),
    );
    // Registration signs no one in on the example hosts (it is enumeration-safe), and
    // sign-in waits for a verified address.
    assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
    await verifyAddress(page, adminUrl, email);
    await (await inForm(page, "Password", 'input[name="identifier"]')).type(email);
    await (await inForm(page, "Password", 'input[name="password"]')).type(password);
    await navigate(page, problems, async () =>
      (await inForm(page, "Password", 'button[name="method"][value="password"]')).click(),
    );
    assert.match(page.url(), /\/ui\/dashboard$/, page.url());

    // Settings: name the key, press the button; the authenticator makes a credential
    // and webauthn.js submits it.
    await page.goto(`${publicUrl}/ui/settings`, { waitUntil: "load" });
    await (await inForm(page, "Security keys", 'input[name="webauthn_register_displayname"]')).type(
      "Chromium key",
    );
    await navigate(page, problems, async () =>
      (await inForm(page, "Security keys", 'button[name="webauthn_register_trigger"]')).click(),
    );
    assert.equal((await credentials()).length, 1, "the authenticator made one credential");
    let text = await bodyText(page);
    assert.ok(text.includes("Your changes have been saved"), text);
    // The settings page lists the key, with its remove button.
    const remove = await inForm(page, "Security keys", 'button[name="webauthn_remove"]');
    const removeLabel = await remove.evaluate((b) => b.textContent);
    assert.ok(removeLabel.includes("Chromium key"), removeLabel);

    // Sign in again with the password (aal1), then step up with the key (aal2).
    await signOutFromDashboard(page);
    await (await inForm(page, "Password", 'input[name="identifier"]')).type(email);
    await (await inForm(page, "Password", 'input[name="password"]')).type(password);
    await navigate(page, problems, async () =>
      (await inForm(page, "Password", 'button[name="method"][value="password"]')).click(),
    );
    // The dashboard refuses a password-only session of an account with a second factor
    // (whoami's default): the UI goes on to the second factor.
    assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
    // The only method left to offer: one form, no headings.
    await navigate(page, problems, () => page.click('button[name="webauthn_login_trigger"]'));
    assert.match(page.url(), /\/ui\/dashboard$/, page.url());
    text = await bodyText(page);
    assert.ok(text.includes("aal2"), text);

    // At aal2 the key can be removed; the settings page no longer lists it.
    await page.goto(`${publicUrl}/ui/settings`, { waitUntil: "load" });
    await navigate(page, problems, async () =>
      (await inForm(page, "Security keys", 'button[name="webauthn_remove"]')).click(),
    );
    text = await bodyText(page);
    assert.ok(text.includes("Your changes have been saved"), text);
    assert.equal(await page.$('button[name="webauthn_remove"]'), null, "the key is gone");
    console.log("chromium security key: added, used for aal2, removed: ok");
  }

  // --- A passkey as the only credential -----------------------------------------------
  {
    const { page, problems, credentials } = await freshPage();
    const email = `passkey-${stamp}@example.com`;
    await page.goto(`${publicUrl}/ui/registration`, { waitUntil: "load" });
    await (await inForm(page, "Passkeys", 'input[name="traits.email"]')).type(email);
    await navigate(page, problems, async () =>
      (await inForm(page, "Passkeys", 'button[name="passkey_register_trigger"]')).click(),
    );
    // Registration signs no one in on the example hosts (it is enumeration-safe).
    assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
    const made = await credentials();
    assert.equal(made.length, 1, "the authenticator made one credential");
    assert.equal(made[0].rpId, "localhost");
    assert.equal(made[0].isResidentCredential, true, "a discoverable passkey");
    assert.ok(made[0].userHandle, "kept with its user handle");
    // Sign-in waits for a verified address.
    await verifyAddress(page, adminUrl, email);

    // Sign in with the passkey alone, no identifier typed: the browser offers the
    // discoverable passkey, whose user handle names the account.
    await navigate(page, problems, async () =>
      (await inForm(page, "Passkeys", 'button[name="passkey_login_trigger"]')).click(),
    );
    assert.match(page.url(), /\/ui\/dashboard$/, page.url());
    assert.ok((await bodyText(page)).includes(email));

    // The same passkey, identifier first (how a passkey that is not discoverable signs in).
    await signOutFromDashboard(page);
    await (await inForm(page, "Passkeys", 'input[name="identifier"]')).type(email);
    await navigate(page, problems, async () =>
      (await inForm(page, "Passkeys", 'button[name="method"][value="passkey"]')).click(),
    );
    assert.match(page.url(), /\/ui\/login\?flow=/, page.url());
    await navigate(page, problems, async () =>
      (await inForm(page, "Passkeys", 'button[name="passkey_login_trigger"]')).click(),
    );
    assert.match(page.url(), /\/ui\/dashboard$/, page.url());
    const text = await bodyText(page);
    assert.ok(text.includes(email), text);
    console.log("chromium passkey: signed up, signed in without and with identifier: ok");
  }
} finally {
  await browser.close();
}
