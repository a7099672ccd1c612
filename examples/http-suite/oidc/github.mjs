// A stand-in for GitHub's OAuth2 sign-in and user API on loopback, speaking the shapes
// GitHub documents (docs.github.com: "Authorizing OAuth apps", "REST API: users",
// "REST API: emails"), for identa's GitHub preset: `node github.mjs <port> <redirect_uri>`.
// No dependencies but Node's own.
//
// - GET  /login/oauth/authorize?client_id=identa&redirect_uri=…&state=…&scope=user:email
//        &code_challenge=…&code_challenge_method=S256 — the user "octo" approves at once:
//        a 302 to redirect_uri?code=…&state=…
// - POST /login/oauth/access_token (form: client_id, client_secret `identa-secret`, code,
//        redirect_uri, code_verifier; `Accept: application/json`) — {access_token,
//        token_type: "bearer", scope}; the code once, its PKCE verifier checked.
// - GET  /user, /user/emails (Authorization: Bearer <access_token>, a User-Agent) —
//        user 4242 "octo" (no public email), and its addresses: a verified primary
//        `octo@example.com` and a verified secondary one.
// Anything else, or a wrong secret, verifier, token or missing User-Agent, is answered
// with GitHub's error shapes. Prints `listening <base URL>` when ready.
// `GITHUB_EMAILS` changes the user's addresses: `primary_unverified` — the primary
// address is not verified (GitHub lists an address before its owner confirms it);
// `none` — the list is empty; `scope_missing` — `/user/emails` answers 404 Not Found, as
// GitHub does for a token granted without the `user:email` scope (the token endpoint
// then grants an empty scope).
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const redirectUri = process.argv[3];
if (!port || !redirectUri) {
  console.error('usage: node github.mjs <port> <redirect_uri>');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const emails = process.env.GITHUB_EMAILS || 'verified';
if (!['verified', 'primary_unverified', 'none', 'scope_missing'].includes(emails)) {
  console.error(`unknown GITHUB_EMAILS ${emails}`);
  process.exit(2);
}
const grantedScope = emails === 'scope_missing' ? '' : 'user:email';
const codes = new Map(); // code -> code_challenge
const tokens = new Set();

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
};

const readBody = (req) =>
  new Promise((resolve) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => resolve(body));
  });

createServer(async (req, res) => {
  const url = new URL(req.url, base);
  if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
    const q = url.searchParams;
    if (q.get('client_id') !== 'identa' || q.get('redirect_uri') !== redirectUri) {
      return json(res, 400, { error: 'redirect_uri_mismatch' });
    }
    if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') || !q.get('state')) {
      return json(res, 400, { error: 'invalid_request', error_description: 'PKCE S256 and state expected' });
    }
    const code = randomUUID();
    codes.set(code, q.get('code_challenge'));
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', q.get('state'));
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
    const form = new URLSearchParams(await readBody(req));
    // GitHub answers token errors with 200 and an `error` field.
    if (form.get('client_id') !== 'identa' || form.get('client_secret') !== 'identa-secret') {
      return json(res, 200, { error: 'incorrect_client_credentials' });
    }
    const challenge = codes.get(form.get('code'));
    codes.delete(form.get('code'));
    const verifier = form.get('code_verifier') || '';
    if (!challenge || createHash('sha256').update(verifier).digest('base64url') !== challenge) {
      return json(res, 200, { error: 'bad_verification_code' });
    }
    const token = `gho_${randomUUID().replaceAll('-', '')}`;
    tokens.add(token);
    return json(res, 200, { access_token: token, token_type: 'bearer', scope: grantedScope });
  }
  if (req.method === 'GET' && (url.pathname === '/user' || url.pathname === '/user/emails')) {
    const token = (req.headers.authorization || '').replace(/^(Bearer|token) /, '');
    if (!tokens.has(token)) {
      return json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    }
    if (!req.headers['user-agent']) {
      return json(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header' });
    }
    if (url.pathname === '/user') {
      return json(res, 200, {
        login: 'octo', id: 4242, node_id: 'MDQ6VXNlcjQyNDI=', type: 'User',
        name: 'Octo Cat', email: null, html_url: 'https://github.com/octo',
      });
    }
    if (emails === 'scope_missing') {
      return json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/users/emails' });
    }
    if (emails === 'none') return json(res, 200, []);
    return json(res, 200, [
      { email: 'octo-old@example.com', primary: false, verified: true, visibility: null },
      { email: 'octo@example.com', primary: true, verified: emails !== 'primary_unverified', visibility: 'private' },
    ]);
  }
  json(res, 404, { message: 'Not Found' });
}).listen(port, '127.0.0.1', () => console.log(`listening ${base}`));
