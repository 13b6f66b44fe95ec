// A real OpenID Connect provider for Switchyard's single sign-on tests: panva's
// oidc-provider (a certified implementation) with one confidential test client, a few
// test users with passwords and a `groups` claim, and its own sign-in form that checks
// those passwords. Started by .ci/run; never for production.
//
// Settings (environment):
//   OIDC_PORT           port to listen on, on 127.0.0.1 (default 9400)
//   OIDC_ISSUER         the issuer URL (default http://127.0.0.1:$OIDC_PORT)
//   OIDC_CLIENT_ID      the test client's id (default switchyard-test)
//   OIDC_CLIENT_SECRET  its secret (default switchyard-test-secret)
//   OIDC_REDIRECT_URIS  comma-separated redirect URIs (default
//                       http://127.0.0.1/api/v1/auth/oidc/callback). The client is a
//                       "native" one, so a loopback URI matches on any port (RFC 8252),
//                       which the test servers on random ports need.
//
// Test users (login / password → groups):
//   alice / alice-password → ["switchyard-operators"]
//   olga  / olga-password  → ["switchyard-admins", "staff"]
//   bob   / bob-password   → ["staff"]            (no role mapped in the tests)
//   dave  / dave-password  → ["switchyard-viewers"]
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT ?? 9400);
const issuer = process.env.OIDC_ISSUER ?? `http://127.0.0.1:${port}`;
const clientId = process.env.OIDC_CLIENT_ID ?? 'switchyard-test';
const clientSecret = process.env.OIDC_CLIENT_SECRET ?? 'switchyard-test-secret';
const redirectUris = (process.env.OIDC_REDIRECT_URIS ?? 'http://127.0.0.1/api/v1/auth/oidc/callback')
  .split(',')
  .map((u) => u.trim())
  .filter(Boolean);

const users = {
  alice: { password: 'alice-password', email: 'alice@example.com', name: 'Alice Operator', groups: ['switchyard-operators'] },
  olga: { password: 'olga-password', email: 'olga@example.com', name: 'Olga Admin', groups: ['switchyard-admins', 'staff'] },
  bob: { password: 'bob-password', email: 'bob@example.com', name: 'Bob Nobody', groups: ['staff'] },
  dave: { password: 'dave-password', email: 'dave@example.com', name: 'Dave Viewer', groups: ['switchyard-viewers'] },
};

function signingKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      application_type: 'native',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [signingKey(`test-${crypto.randomUUID().slice(0, 8)}`)] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // The claims of the granted scopes go into the ID token too (not only userinfo).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: user.email, email_verified: true, name: user.name, groups: user.groups };
      },
    };
  },
  ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
});

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function loginPage(res, uid, error) {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body>
  <h1>Test OpenID provider</h1>
  ${error ? `<p role="alert">${escape(error)}</p>` : ''}
  <form method="post" action="/interaction/${escape(uid)}/login">
    <label>Username <input name="login" autocomplete="username" required autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Sign in</button>
  </form>
</body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16_384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// The first-party test client needs no consent page: grant what it asks for.
async function grantConsent(req, res, details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  if (prompt.details.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(prompt.details.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, url) {
  const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return false;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== match[1]) {
    res.statusCode = 400;
    res.end('interaction mismatch');
    return true;
  }
  if (req.method === 'GET' && !match[2]) {
    if (details.prompt.name === 'consent') await grantConsent(req, res, details);
    else loginPage(res, details.uid);
    return true;
  }
  if (req.method === 'POST' && match[2]) {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const user = Object.hasOwn(users, login) ? users[login] : undefined;
    const password = Buffer.from(form.get('password') ?? '');
    const expected = Buffer.from(user?.password ?? '');
    if (!user || password.length !== expected.length || !crypto.timingSafeEqual(password, expected)) {
      loginPage(res, details.uid, 'Invalid username or password.');
      return true;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return true;
  }
  res.statusCode = 405;
  res.end();
  return true;
}

const handleOidc = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/healthz') {
      res.end('ok');
      return;
    }
    if (await interaction(req, res, url)) return;
    handleOidc(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) res.statusCode = 400;
    res.end(String(err?.message ?? err));
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider test issuer ${issuer} (client ${clientId}, redirect URIs ${redirectUris.join(' ')})`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
