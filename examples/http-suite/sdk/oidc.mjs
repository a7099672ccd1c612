// Sign-up and sign-in with an OpenID Connect provider through the official Kratos SDK's
// FrontendApi, as a server-rendered Kratos front end drives browser flows (it forwards the
// browser's cookies): the flow's ui nodes carry the provider's button; pressing it answers
// 422 `browser_location_change_required` pointing at the provider; the provider's login and
// consent pages are submitted as a person would and the browser goes back to identa's
// callback; toSession shows the identity with the provider's address, signed in with
// `oidc`; a fresh browser's login flow through the provider lands in the same identity.
//
//   node oidc.mjs <public base URL> <admin base URL> <provider issuer URL>
import assert from "node:assert/strict";
import { Configuration, FrontendApi } from "@ory/kratos-client";

const [publicUrl, , issuer] = process.argv.slice(2);
const frontend = new FrontendApi(new Configuration({ basePath: publicUrl }));
const provider = "test";
const email = `sdk-oidc-${Date.now()}@example.com`;

/// A browser's cookies for one site: `Set-Cookie` answers in, a `Cookie` header out.
class Jar {
  #cookies = new Map();

  take(setCookies) {
    for (const line of setCookies ?? []) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired || value === "") this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

/// The ui node named `name` of `flow`.
function node(flow, name) {
  const found = flow.ui.nodes.find((n) => n.attributes.name === name);
  assert.ok(found, `no node ${name} in ${JSON.stringify(flow.ui.nodes)}`);
  return found;
}

/// The SDK call `promise` fails with HTTP `status`: its answer (the SDK throws on it).
async function refusedWith(promise, status) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.response?.status, status, JSON.stringify(err.response?.data));
    return err.response;
  }
  assert.fail(`expected HTTP ${status}`);
}

/// A person signs in at the provider as `login` (the provider's own cookies in
/// `providerJar`), from the authorization URL `to`: its login and consent pages submitted
/// as they come. The URL the provider sends the browser back to.
async function signInAtProvider(providerJar, to, login) {
  let url = to;
  let form = null;
  for (let i = 0; i < 12; i++) {
    const res = await fetch(url, {
      method: form ? "POST" : "GET",
      redirect: "manual",
      headers: {
        cookie: providerJar.header(),
        ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    providerJar.take(res.headers.getSetCookie());
    form = null;
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get("location"), url).toString();
      if (!next.startsWith(issuer)) return next;
      url = next;
      continue;
    }
    const html = await res.text();
    if (html.includes('name="prompt" value="login"')) {
      form = { prompt: "login", login, password: "any" };
    } else if (html.includes('name="prompt" value="consent"')) {
      form = { prompt: "consent" };
    } else {
      assert.fail(`an unexpected page at the provider (${url}): ${html}`);
    }
  }
  assert.fail("the provider never sent the browser back");
}

/// Through a `kind` ("Registration" or "Login") browser flow with a fresh browser: the
/// button checked, pressed through the SDK, the provider's pages, the callback. The
/// browser's cookies at identa afterwards.
async function throughTheProvider(kind, verb) {
  const jar = new Jar();
  const created = await frontend[`createBrowser${kind}Flow`]();
  jar.take(created.headers["set-cookie"]);
  const flow = created.data;
  assert.equal(flow.type, "browser");

  const button = node(flow, "provider");
  assert.equal(button.group, "oidc");
  assert.equal(button.type, "input");
  assert.equal(button.attributes.type, "submit");
  assert.equal(button.attributes.value, provider);
  assert.equal(button.meta.label.context?.provider, "Test ID", JSON.stringify(button.meta));
  assert.equal(button.meta.label.text, `${verb} with Test ID`);
  console.log(`${kind.toLowerCase()} flow shows the provider button: ok`);

  const pressed = await refusedWith(
    frontend[`update${kind}Flow`]({
      flow: flow.id,
      cookie: jar.header(),
      [`update${kind}FlowBody`]: {
        method: "oidc",
        provider,
        csrf_token: node(flow, "csrf_token").attributes.value,
      },
    }),
    422,
  );
  jar.take(pressed.headers["set-cookie"]);
  assert.equal(pressed.data.error.id, "browser_location_change_required");
  const to = pressed.data.redirect_browser_to;
  assert.ok(to.startsWith(issuer), to);
  assert.ok(to.includes("code_challenge_method=S256"), to);
  console.log(`${kind.toLowerCase()} with the provider answers browser_location_change_required: ok`);

  const callback = await signInAtProvider(new Jar(), to, email);
  assert.ok(callback.startsWith(`${publicUrl}/self-service/methods/oidc/callback/${provider}`), callback);
  const back = await fetch(callback, { redirect: "manual", headers: { cookie: jar.header() } });
  assert.equal(back.status, 303, await back.text());
  jar.take(back.headers.getSetCookie());
  console.log(`${kind.toLowerCase()} back from the provider at the callback: ok`);
  return jar;
}

const signedUp = await throughTheProvider("Registration", "Sign up");
const { data: session } = await frontend.toSession({ cookie: signedUp.header() });
assert.equal(session.active, true);
assert.equal(session.identity.traits.email, email);
assert.equal(session.authentication_methods[0].method, "oidc");
assert.equal(session.identity.verifiable_addresses[0].verified, true);
console.log("toSession after the sign-up shows the provider's address, method oidc: ok");

const signedIn = await throughTheProvider("Login", "Sign in");
const { data: again } = await frontend.toSession({ cookie: signedIn.header() });
assert.equal(again.identity.id, session.identity.id, "the identity the sign-up made");
assert.equal(again.authentication_methods[0].method, "oidc");
assert.notEqual(again.id, session.id, "a new session");
console.log("toSession after a fresh login is the same identity: ok");
console.log("kratos sdk oidc: ok");
