// A native-app round trip through the official Kratos SDK against an identa host:
// registration (no session: enumeration-safe) -> verification with the mailed code -> login -> whoami -> logout -> login -> wrong password (400, 4000006) ->
// settings password change -> recovery and verification with a wrong code (200 with the flow,
// 4060006 / 4070006, as Kratos) -> admin get / list / delete identity -> admin batch import,
// get by external id, list by ids with the password hash.
//
//   node roundtrip.mjs <public base URL> <admin base URL>
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Configuration, FrontendApi, IdentityApi } from "@ory/kratos-client";

const [publicUrl, adminUrl] = process.argv.slice(2);
const frontend = new FrontendApi(new Configuration({ basePath: publicUrl }));
const identities = new IdentityApi(new Configuration({ basePath: adminUrl }));
const email = `sdk-${Date.now()}@example.com`;
const password = "a long and unusual passphrase";

async function expectStatus(promise, status) {
  try {
    await promise;
  } catch (err) {
    assert.equal(err.response?.status, status, JSON.stringify(err.response?.data));
    return err.response.data;
  }
  assert.fail(`expected HTTP ${status}`);
}

// Registration.
const { data: regFlow } = await frontend.createNativeRegistrationFlow();
assert.equal(regFlow.type, "api");
const { data: registered } = await frontend.updateRegistrationFlow({
  flow: regFlow.id,
  updateRegistrationFlowBody: { method: "password", password, traits: { email, name: "Sdk" } },
});
// The example hosts' registration is enumeration-safe: it signs no one in.
assert.equal(registered.session_token, undefined, "no session token after registration");
assert.equal(registered.identity.traits.email, email);
assert.equal(registered.continue_with[0].action, "show_verification_ui");
// Sign-in waits for a verified address: the code mailed (read from the host's outbox)
// completes the verification flow registration started.
const outbox = await fetch(`${adminUrl}/admin/courier/messages`);
assert.equal(outbox.status, 200);
const mail = (await outbox.json()).find((m) => m.recipient === email);
assert.ok(mail, `no mail to ${email}`);
const code = mail.body.match(/(?<!\d)\d{6}(?!\d)/)?.[0];
assert.ok(code, mail.body);
const { data: verified } = await frontend.updateVerificationFlow({
  flow: registered.continue_with[0].flow.id,
  updateVerificationFlowBody: { method: "code", code },
});
assert.equal(verified.state, "passed_challenge");
const { data: firstLoginFlow } = await frontend.createNativeLoginFlow();
const { data: firstLogin } = await frontend.updateLoginFlow({
  flow: firstLoginFlow.id,
  updateLoginFlowBody: { method: "password", identifier: email, password },
});
let token = firstLogin.session_token;
assert.ok(token, "a session token after signing in");

// whoami.
const { data: session } = await frontend.toSession({ xSessionToken: token });
assert.equal(session.identity.id, registered.identity.id);
assert.equal(session.authenticator_assurance_level, "aal1");

// Logout.
await frontend.performNativeLogout({ performNativeLogoutBody: { session_token: token } });
await expectStatus(frontend.toSession({ xSessionToken: token }), 401);

// Login, then a wrong password.
const { data: loginFlow } = await frontend.createNativeLoginFlow();
const { data: loggedIn } = await frontend.updateLoginFlow({
  flow: loginFlow.id,
  updateLoginFlowBody: { method: "password", identifier: email, password },
});
token = loggedIn.session_token;
assert.ok(token);
const { data: again } = await frontend.createNativeLoginFlow();
const refused = await expectStatus(
  frontend.updateLoginFlow({
    flow: again.id,
    updateLoginFlowBody: { method: "password", identifier: email, password: "not the password" },
  }),
  400,
);
assert.equal(refused.ui.messages[0].id, 4000006);

// Settings: change the password (the session is fresh, so it may).
const { data: settingsFlow } = await frontend.createNativeSettingsFlow({ xSessionToken: token });
assert.equal(settingsFlow.identity.traits.email, email);
const { data: saved } = await frontend.updateSettingsFlow({
  flow: settingsFlow.id,
  xSessionToken: token,
  updateSettingsFlowBody: { method: "password", password: "another long passphrase" },
});
assert.equal(saved.state, "success");
const { data: relogin } = await frontend.createNativeLoginFlow();
await frontend.updateLoginFlow({
  flow: relogin.id,
  updateLoginFlowBody: { method: "password", identifier: email, password: "another long passphrase" },
});

// Recovery and verification: a wrong code is answered 200 with the flow and its message,
// which the SDK resolves like any flow (Kratos's answer; a 400 would throw).
for (const [kind, message] of [["Recovery", 4060006], ["Verification", 4070006]]) {
  const { data: codeFlow } = await frontend[`createNative${kind}Flow`]();
  const body = `update${kind}FlowBody`;
  const { data: sent } = await frontend[`update${kind}Flow`]({
    flow: codeFlow.id,
    [body]: { method: "code", email },
  });
  assert.equal(sent.state, "sent_email");
  const { data: refused, status } = await frontend[`update${kind}Flow`]({
    flow: codeFlow.id,
    [body]: { method: "code", code: "00000000" },
  });
  assert.equal(status, 200);
  assert.equal(refused.id, codeFlow.id);
  assert.equal(refused.state, "sent_email");
  assert.equal(refused.ui.messages[0].id, message, JSON.stringify(refused.ui.messages));
}

// Admin: get, list, delete.
const { data: fetched } = await identities.getIdentity({ id: registered.identity.id });
assert.equal(fetched.traits.email, email);
const { data: listed } = await identities.listIdentities({ credentialsIdentifier: email });
assert.equal(listed.length, 1);
await identities.deleteIdentity({ id: registered.identity.id });
await expectStatus(identities.getIdentity({ id: registered.identity.id }), 404);

// Admin: a batch import (one created, one refused on its own), found by external id,
// listed by ids with the password hash (an export).
const importedEmail = `imported-${Date.now()}@example.com`;
const externalId = `sdk-${randomUUID()}`;
const [first, second] = [randomUUID(), randomUUID()];
const { data: batch, status: batchStatus } = await identities.batchPatchIdentities({
  patchIdentitiesBody: {
    identities: [
      {
        patch_id: first,
        create: {
          schema_id: "default",
          traits: { email: importedEmail },
          external_id: externalId,
          verifiable_addresses: [
            { value: importedEmail, via: "email", verified: true, status: "completed" },
          ],
          credentials: { password: { config: { password } } },
        },
      },
      { patch_id: second, create: { schema_id: "default", traits: { email: importedEmail } } },
    ],
  },
});
assert.equal(batchStatus, 200);
assert.deepEqual(
  batch.identities.map((item) => [item.action, item.patch_id]),
  [["create", first], ["error", second]],
  JSON.stringify(batch),
);
assert.equal(batch.identities[1].error.code, 409);
const importedId = batch.identities[0].identity;
const { data: byExternal } = await identities.getIdentityByExternalID({ externalID: externalId });
assert.equal(byExternal.id, importedId);
assert.equal(byExternal.external_id, externalId);
assert.equal(byExternal.verifiable_addresses[0].verified, true);
const { data: byIds } = await identities.listIdentities({
  ids: [importedId],
  includeCredential: ["password"],
});
assert.equal(byIds.length, 1);
assert.match(byIds[0].credentials.password.config.hashed_password, /^\$argon2id\$/);
await identities.deleteIdentity({ id: importedId });

console.log("kratos sdk round trip: ok");
