// A real OpenID Connect provider (npm oidc-provider) for qbo-mcp's identity-provider sign-in
// tests, on 127.0.0.1 with a port chosen by the system. Prints `issuer <url>` once listening.
// Accounts come from ACCOUNTS (JSON: {"sub": {"email", "email_verified"}}); the account that the
// next sign-in completes as is set with `POST /_next {"sub": …}` (no login form to drive);
// `POST /_account {"sub", "email", "email_verified"}` adds or changes an account.
// CLIENT_ID and CLIENT_SECRET describe the one client (qbo-mcp); its redirect URI is only known
// once qbo-mcp listens, so the provider starts with `POST /_start {"redirect_uri": …}`.
import http from 'node:http';
import Provider from 'oidc-provider';

const accounts = JSON.parse(process.env.ACCOUNTS || '{}');
let nextSub = Object.keys(accounts)[0];

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  let provider;
  let callback;
  const start = (redirectUri) => {
  provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    pkce: { required: () => true },
    // Put the email claims in the ID token, as Google, Entra ID and Okta do.
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    cookies: { keys: ['test-cookie-key-not-secret'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return { accountId: sub, async claims() { return { sub, ...account }; } };
    },
  });
  callback = provider.callback();
  };
  server.on('request', async (req, res) => {
    try {
      if (req.method === 'POST' && req.url === '/_start') {
        let body = '';
        for await (const chunk of req) body += chunk;
        start(JSON.parse(body).redirect_uri);
        res.writeHead(204).end();
        return;
      }
      if (!provider) {
        res.writeHead(503).end('not started: POST /_start first');
        return;
      }
      if (req.method === 'POST' && req.url === '/_account') {
        let body = '';
        for await (const chunk of req) body += chunk;
        const { sub, ...claims } = JSON.parse(body);
        accounts[sub] = claims;
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'POST' && req.url === '/_next') {
        let body = '';
        for await (const chunk of req) body += chunk;
        nextSub = JSON.parse(body).sub;
        res.writeHead(204).end();
        return;
      }
      if (req.url.startsWith('/interaction/')) {
        const details = await provider.interactionDetails(req, res);
        if (details.prompt.name === 'login') {
          await provider.interactionFinished(req, res, { login: { accountId: nextSub } }, { mergeWithLastSubmission: false });
        } else {
          const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
          grant.addOIDCScope(details.params.scope);
          const grantId = await grant.save();
          await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        }
        return;
      }
      callback(req, res);
    } catch (e) {
      console.error(e);
      res.writeHead(500).end(String(e));
    }
  });
  console.log(`issuer ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
