// A stand-in for Sign in with Apple on loopback, speaking what Apple documents
// (developer.apple.com: "Sign in with Apple REST API", "Generate and validate tokens",
// "Incorporating Sign in with Apple into other platforms"), for identa's Apple preset:
// `node apple.mjs <port> <redirect_uri>`. Uses `jose` (a dependency of oidc-provider).
//
// The developer account: team `TEAM123456`, Services ID (client id) `com.example.identa`,
// key id `KEY1234567`; its P-256 private key is `APPLE_PRIVATE_KEY` (PKCS#8 PEM) if set,
// else made at start; it is printed (PEM, base64) as `key <base64>` before
// `listening <issuer>`.
//
// - GET  /.well-known/openid-configuration — Apple's discovery document, this origin's.
// - GET  /auth/authorize?client_id=…&redirect_uri=…&response_type=code&scope=openid email
//        name&state=…&nonce=…&response_mode=form_post — the user approves at once;
//        asking for `email` or `name` without `response_mode=form_post` is refused as
//        Apple does. The answer is a page whose form posts `code`, `state` and, on the
//        first sign-in only, `user` ({"name":{"firstName","lastName"},"email"}) to
//        redirect_uri.
// - POST /auth/token (form: client_id, client_secret, code, grant_type, redirect_uri,
//        code_verifier) — the client secret must be an ES256 JWT with `kid`
//        `KEY1234567`, signed by the developer key, `iss` the team, `sub` the client id,
//        `aud` https://appleid.apple.com, not expired, `exp` at most six months after
//        `iat`; else 400 {"error":"invalid_client"}. The code once, for its redirect_uri
//        and PKCE verifier (when a challenge was sent); else {"error":"invalid_grant"}.
//        Answers {access_token, token_type, expires_in, refresh_token, id_token}: the ID
//        token RS256 from /auth/keys, `iss` this issuer, `aud` the client id, the
//        authorization's `nonce`, `sub` `000123.4f6b0c1e`, `email`
//        `ada@privaterelay.appleid.com`, `email_verified` "true" and `is_private_email`
//        "true" — strings, as Apple sends them.
// - GET  /auth/keys — the JWKS.
// - POST /test/native-id-token (form: nonce, aud) — not Apple's: the ID token Apple's SDK
//        would hand a native app (as the token endpoint's, `aud` default the client id,
//        `nonce` left out when none is given), for identa's native sign-in tests.
import { createHash, createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import { SignJWT, exportJWK, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';

const port = Number(process.argv[2]);
const redirectUri = process.argv[3];
if (!port || !redirectUri) {
  console.error('usage: node apple.mjs <port> <redirect_uri>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const TEAM = 'TEAM123456';
const CLIENT = 'com.example.identa';
const KEY_ID = 'KEY1234567';
const SIX_MONTHS = 15777000;

const developer = process.env.APPLE_PRIVATE_KEY
  ? (() => {
      const privateKey = createPrivateKey(process.env.APPLE_PRIVATE_KEY);
      return { privateKey, publicKey: createPublicKey(privateKey) };
    })()
  : await generateKeyPair('ES256', { extractable: true });
const signing = await generateKeyPair('RS256', { extractable: true });
const signingKid = randomUUID();
const jwks = { keys: [{ ...(await exportJWK(signing.publicKey)), kid: signingKid, use: 'sig', alg: 'RS256' }] };

const user = { sub: '000123.4f6b0c1e', email: 'ada@privaterelay.appleid.com' };
let firstSignIn = true;
const codes = new Map(); // code -> { nonce, challenge, redirectUri }

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8' });
  res.end(JSON.stringify(body));
};
const readBody = (req) =>
  new Promise((resolve) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => resolve(body));
  });
const escape = (text) =>
  String(text).replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

async function checkClientSecret(secret) {
  const { payload, protectedHeader } = await jwtVerify(secret, developer.publicKey, {
    algorithms: ['ES256'],
    issuer: TEAM,
    subject: CLIENT,
    audience: 'https://appleid.apple.com',
    requiredClaims: ['iat', 'exp'],
  });
  if (protectedHeader.kid !== KEY_ID) throw new Error(`kid ${protectedHeader.kid}`);
  if (payload.exp - payload.iat > SIX_MONTHS) throw new Error('lives longer than six months');
}

// An ID token about the user, RS256 from /auth/keys, for `aud`, with `nonce` if given.
async function idToken(nonce, aud) {
  const claims = {
    sub: user.sub,
    email: user.email,
    email_verified: 'true',
    is_private_email: 'true',
    auth_time: Math.floor(Date.now() / 1000),
    nonce_supported: true,
    real_user_status: 2,
  };
  if (nonce) claims.nonce = nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: signingKid })
    .setIssuer(issuer)
    .setAudience(aud)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(signing.privateKey);
}

createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
    return json(res, 200, {
      issuer,
      authorization_endpoint: `${issuer}/auth/authorize`,
      token_endpoint: `${issuer}/auth/token`,
      revocation_endpoint: `${issuer}/auth/revoke`,
      jwks_uri: `${issuer}/auth/keys`,
      response_types_supported: ['code'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'email', 'name'],
      token_endpoint_auth_methods_supported: ['client_secret_post'],
      claims_supported: ['aud', 'email', 'email_verified', 'exp', 'iat', 'is_private_email', 'iss', 'nonce', 'nonce_supported', 'real_user_status', 'sub', 'transfer_sub'],
    });
  }
  if (req.method === 'GET' && url.pathname === '/auth/keys') {
    return json(res, 200, jwks);
  }
  if (req.method === 'GET' && url.pathname === '/auth/authorize') {
    const q = url.searchParams;
    if (q.get('client_id') !== CLIENT) return json(res, 400, { error: 'invalid_client' });
    if (q.get('redirect_uri') !== redirectUri) return json(res, 400, { error: 'invalid_request', error_description: 'Invalid web redirect url.' });
    if (q.get('response_type') !== 'code' || !q.get('state')) return json(res, 400, { error: 'invalid_request' });
    const scopes = (q.get('scope') || '').split(' ');
    if ((scopes.includes('email') || scopes.includes('name')) && q.get('response_mode') !== 'form_post') {
      return json(res, 400, { error: 'invalid_request', error_description: 'response_mode must be form_post when name or email scope is requested.' });
    }
    const code = `c${randomUUID().replaceAll('-', '')}.0.nrsq.${randomUUID()}`;
    codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirectUri: q.get('redirect_uri') });
    const fields = { code, state: q.get('state') };
    if (firstSignIn && scopes.includes('name')) {
      fields.user = JSON.stringify({ name: { firstName: 'Ada', lastName: 'Lovelace' }, email: user.email });
    }
    firstSignIn = false;
    const inputs = Object.entries(fields)
      .map(([name, value]) => `<input type="hidden" name="${name}" value="${escape(value)}"/>`)
      .join('\n');
    res.writeHead(200, { 'content-type': 'text/html;charset=UTF-8' });
    return res.end(`<!DOCTYPE html>
<html><head><title>Sign in with Apple</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="${escape(redirectUri)}">
${inputs}
</form></body></html>`);
  }
  if (req.method === 'POST' && url.pathname === '/auth/token') {
    const form = new URLSearchParams(await readBody(req));
    if (form.get('client_id') !== CLIENT) return json(res, 400, { error: 'invalid_client' });
    try {
      await checkClientSecret(form.get('client_secret') || '');
    } catch (e) {
      console.error(`client secret refused: ${e.message}`);
      return json(res, 400, { error: 'invalid_client' });
    }
    const grant = codes.get(form.get('code'));
    codes.delete(form.get('code'));
    if (form.get('grant_type') !== 'authorization_code' || !grant || form.get('redirect_uri') !== grant.redirectUri) {
      return json(res, 400, { error: 'invalid_grant' });
    }
    if (grant.challenge) {
      const verifier = form.get('code_verifier') || '';
      if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
        return json(res, 400, { error: 'invalid_grant' });
      }
    }
    return json(res, 200, {
      access_token: `a${randomUUID().replaceAll('-', '')}.0.nrsq.access`,
      token_type: 'Bearer',
      expires_in: 3600,
      refresh_token: `r${randomUUID().replaceAll('-', '')}.0.nrsq.refresh`,
      id_token: await idToken(grant.nonce, CLIENT),
    });
  }
  if (req.method === 'POST' && url.pathname === '/test/native-id-token') {
    const form = new URLSearchParams(await readBody(req));
    return json(res, 200, { id_token: await idToken(form.get('nonce'), form.get('aud') || CLIENT) });
  }
  json(res, 404, { error: 'not_found' });
}).listen(port, '127.0.0.1', async () => {
  const pem = process.env.APPLE_PRIVATE_KEY || (await exportPKCS8(developer.privateKey));
  console.log(`key ${Buffer.from(pem).toString('base64')}`);
  console.log(`listening ${issuer}`);
});
