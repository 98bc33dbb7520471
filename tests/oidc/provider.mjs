// A real OpenID Connect provider for Atrium's tests: node's oidc-provider (the certified implementation),
// configured from the environment, with:
//  - one confidential client (authorization code + PKCE, refresh tokens) for single sign-on,
//  - the OAuth2 password grant (registered with provider.registerGrantType; oidc-provider has none built in),
//    issuing the provider's own access and refresh tokens (rotated; a reused refresh token revokes the grant),
//    for the external-authentication mode,
//  - a minimal login page at /interaction/:uid (a form: login + password) that finishes login and consent,
//  - test controls under /_test: set the clock back or forth, slow down or fail the token endpoint, count calls.
// Run: PORT=… CLIENT_ID=… CLIENT_SECRET=… REDIRECT_URIS=… ACCOUNTS='[…]' node provider.mjs
import http from 'node:http';
import { URLSearchParams } from 'node:url';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT || 9400);
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || '[]');
const control = { clockOffsetS: 0, tokenDelayMs: 0, failTokenRequests: 0, tokenRequests: 0, refreshRequests: 0, passwordRequests: 0 };

// The provider's clock, movable by the tests (an issuer with a wrong clock mints expired ID tokens).
const realNow = Date.now;
Date.now = () => realNow() + control.clockOffsetS * 1000;

const findAccount = (id) => accounts.find((a) => a.id === id || a.email === id);

const configuration = {
  clients: [{
    client_id: process.env.CLIENT_ID || 'atrium',
    client_secret: process.env.CLIENT_SECRET || 'atrium-test-secret',
    redirect_uris: (process.env.REDIRECT_URIS || 'http://localhost/cb').split(','),
    grant_types: ['authorization_code', 'refresh_token', 'password'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false, // the claims of the scopes go into the ID token too
  ttl: {
    AccessToken: Number(process.env.ACCESS_TOKEN_TTL || 3600),
    IdToken: Number(process.env.ID_TOKEN_TTL || 300),
    RefreshToken: 86400,
    AuthorizationCode: 60,
    Grant: 86400,
    Interaction: 600,
    Session: 86400,
  },
  rotateRefreshToken: true,
  issueRefreshToken: async () => true,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['atrium-test-cookie-key'] },
  async findAccount(ctx, id) {
    const account = findAccount(id);
    if (!account) return undefined;
    return {
      accountId: account.id,
      async claims() {
        return {
          sub: account.id,
          email: account.email,
          email_verified: account.email_verified !== false,
          name: account.name,
          preferred_username: account.username,
          groups: account.groups || [],
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = true;

// ---- the OAuth2 password grant ------------------------------------------------------------------
provider.registerGrantType('password', async (ctx) => {
  control.passwordRequests += 1;
  const { username, password, scope } = ctx.oidc.params;
  const account = accounts.find((a) => (a.email === username || a.username === username) && a.password === password);
  if (!account) throw new errors.InvalidGrant('invalid username or password');
  const { client } = ctx.oidc;
  const grant = new provider.Grant({ accountId: account.id, clientId: client.clientId });
  grant.addOIDCScope(scope || 'openid email profile offline_access');
  const grantId = await grant.save();
  const at = new provider.AccessToken({ accountId: account.id, client, grantId, scope: scope || 'openid email profile', gty: 'password' });
  const rt = new provider.RefreshToken({ accountId: account.id, client, grantId, scope: scope || 'openid email profile offline_access', gty: 'password', rotations: 0, iiat: Math.floor(Date.now() / 1000) });
  ctx.body = {
    access_token: await at.save(), token_type: 'Bearer', expires_in: at.expiration,
    refresh_token: await rt.save(), scope: at.scope,
  };
}, ['username', 'password', 'scope']);

// ---- test controls and the login page, in front of the provider -----------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readBody = (req) => new Promise((resolve) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => resolve(b)); });
const page = (uid, message = '') => `<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider</h1><p>${message}</p>
<form method="post" action="/interaction/${uid}/login">
<label>Login <input name="login" autocomplete="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Continue</button></form></body></html>`;

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === '/_test/accounts' && req.method === 'POST') {
      accounts.push(JSON.parse(await readBody(req)));
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (url.pathname === '/_test/control' && req.method === 'POST') {
      Object.assign(control, JSON.parse(await readBody(req) || '{}'));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(control));
      return;
    }
    if (url.pathname === '/_test/control') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(control));
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const login = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (login) {
      const details = await provider.interactionDetails(req, res);
      if (!login[2]) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(page(details.uid));
        return;
      }
      const form = new URLSearchParams(await readBody(req));
      const account = accounts.find((a) => (a.email === form.get('login') || a.id === form.get('login')) && a.password === form.get('password'));
      if (!account) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(page(details.uid, 'Wrong login or password.'));
        return;
      }
      const grant = new provider.Grant({ accountId: account.id, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId: account.id }, consent: { grantId } }, { mergeWithLastSubmission: false });
      return;
    }
    if (url.pathname === '/token') {
      control.tokenRequests += 1;
      if (control.tokenDelayMs) await sleep(control.tokenDelayMs);
      if (control.failTokenRequests > 0) {
        control.failTokenRequests -= 1;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}');
        return;
      }
      const body = await readBody(req);
      if (new URLSearchParams(body).get('grant_type') === 'refresh_token') control.refreshRequests += 1;
      // hand the body on to the provider
      const { Readable } = await import('node:stream');
      const replay = Object.assign(Readable.from([Buffer.from(body)]), { headers: req.headers, method: req.method, url: req.url, httpVersion: req.httpVersion, socket: req.socket, connection: req.socket });
      callback(replay, res);
      return;
    }
    callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  }
});
server.listen(port, '127.0.0.1', () => { process.stdout.write(`listening ${issuer}\n`); });
