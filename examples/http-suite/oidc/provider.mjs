// A certified OpenID provider (panva/oidc-provider) on loopback, for identa's OpenID
// Connect tests: `node provider.mjs <port> <redirect_uri>[,<redirect_uri>…]`.
//
// One confidential client, `identa` (secret `identa-secret`), allowed the given redirect
// URIs. The development interactions
// sign in any login name (the account id, which becomes the subject); the account's
// claims are derived from it: `<login>` is the email when it contains `@` (else
// `<login>@example.com`), `email_verified` is true unless the login starts with
// `unverified`, `name` is `Test <login>`, `given_name` `Test` and `family_name` the
// login's local part. Each start signs with a new key (a new `kid`), so a restart on the
// same port is a provider that rotated its keys. Prints `listening <issuer>` when ready.
// `OIDC_ID_TOKEN_CLAIMS=sub_only` issues ID tokens without the scopes' claims (the
// specification's default: they are at the userinfo endpoint only).
// `OIDC_TAMPER=id_token_signature` alters the ID tokens' signatures, and
// `OIDC_TAMPER=id_token_audience` issues them, validly signed, for another client.
// `OIDC_TAMPER=userinfo_sub` answers the userinfo endpoint about another subject than
// the ID token's.
// `OIDC_TAMPER=userinfo_oversized` pads the userinfo answer past 1 MiB.
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const redirectUris = (process.argv[3] || '').split(',').filter(Boolean);
if (!port || redirectUris.length === 0) {
  console.error('usage: node provider.mjs <port> <redirect_uri>[,<redirect_uri>…]');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };

const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: redirectUris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

const provider = new Provider(issuer, {
  clients: [client('identa', 'identa-secret')],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: id.includes('@') ? id : `${id}@example.com`,
          email_verified: !id.startsWith('unverified'),
          name: `Test ${id}`,
          given_name: 'Test',
          family_name: id.split('@')[0],
        };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name'] },
  // The ID token carries the scopes' claims (as Google's does), not only the userinfo.
  conformIdTokenClaims: process.env.OIDC_ID_TOKEN_CLAIMS === 'sub_only',
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['identa-test-only'] },
  jwks: { keys: [signingKey] },
});
provider.proxy = false;

// `OIDC_TAMPER`: what the token endpoint sends is altered on its way out —
// `id_token_signature`: a forger changed the signature; `id_token_audience`: the token is
// for another client (`aud`), signed with the provider's own key.
const tamper = process.env.OIDC_TAMPER;
if (tamper) {
  provider.use(async (ctx, next) => {
    await next();
    if (tamper === 'userinfo_sub') {
      if (ctx.path === '/me' && ctx.body && typeof ctx.body.sub === 'string') {
        ctx.body = { ...ctx.body, sub: `${ctx.body.sub}-someone-else` };
      }
      return;
    }
    if (tamper === 'userinfo_oversized') {
      if (ctx.path === '/me' && ctx.body && typeof ctx.body.sub === 'string') {
        ctx.body = { ...ctx.body, padding: 'x'.repeat((1 << 20) + 1) };
      }
      return;
    }
    if (ctx.path !== '/token' || !ctx.body || typeof ctx.body.id_token !== 'string') return;
    const [header, payload, signature] = ctx.body.id_token.split('.');
    let idToken;
    if (tamper === 'id_token_signature') {
      const flipped = signature[10] === 'A' ? 'B' : 'A';
      idToken = `${header}.${payload}.${signature.slice(0, 10)}${flipped}${signature.slice(11)}`;
    } else if (tamper === 'id_token_audience') {
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      claims.aud = 'another-client';
      delete claims.azp;
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const signed = sign('sha256', Buffer.from(`${header}.${body}`), privateKey);
      idToken = `${header}.${body}.${signed.toString('base64url')}`;
    } else {
      throw new Error(`unknown OIDC_TAMPER ${tamper}`);
    }
    ctx.body = { ...ctx.body, id_token: idToken };
  });
}

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
