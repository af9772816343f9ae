// The whole connection of an assistant, as the official MCP TypeScript SDK
// (@modelcontextprotocol/client) makes it: discovery from the 401, dynamic registration,
// sign-in and consent driven by an HTTP client with a cookie jar, the token exchange,
// tools/list and tools/call, a refresh, and revocation. Run by the Rust integration test
// `assistants::typescript_sdk_*` against a real `qbo-mcp serve`; prints one JSON line.
//
//   node oauth-flow.mjs SERVER_URL USERNAME PASSWORD

import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  refreshAuthorization,
  discoverAuthorizationServerMetadata,
} from '@modelcontextprotocol/client';

const [base, username, password] = process.argv.slice(2);
const mcpUrl = new URL(`${base}/mcp`);
const redirectUrl = 'http://127.0.0.1:43118/callback';
const report = {};

function assert(ok, what) {
  if (!ok) throw new Error(`assertion failed: ${what}`);
}

/** A browser: a cookie jar, no automatic redirects. */
class Browser {
  constructor() {
    this.cookies = new Map();
    this.consentPage = '';
  }
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers || {});
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const r = await fetch(new URL(url, base), { ...init, headers, redirect: 'manual' });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return r;
  }
  static fields(html) {
    const out = new URLSearchParams();
    for (const tag of html.match(/<input[^>]*>/g) || []) {
      const name = /name="([^"]*)"/.exec(tag);
      const value = /value="([^"]*)"/.exec(tag);
      if (name) out.set(unescape(name[1]), value ? unescape(value[1]) : '');
    }
    return out;
  }
  /** Follows the authorization URL through sign-in and consent to the client's callback. */
  async authorize(authorizationUrl) {
    let r = await this.fetch(authorizationUrl);
    for (let step = 0; step < 10; step++) {
      if (r.status === 302 || r.status === 303) {
        const location = r.headers.get('location');
        if (location.startsWith('http') && !location.startsWith(base)) return location;
        const path = new URL(location, base).pathname;
        if (path === '/login') {
          const page = await (await this.fetch(location)).text();
          const form = Browser.fields(page);
          form.set('username', username);
          form.set('password', password);
          r = await this.fetch('/login', { method: 'POST', body: form });
          assert(r.status === 303, `sign-in answered ${r.status}`);
          continue;
        }
        r = await this.fetch(location);
        continue;
      }
      assert(r.status === 200, `page answered ${r.status}`);
      const page = await r.text();
      const here = new URL(r.url).pathname;
      if (page.includes('name="decision"')) {
        this.consentPage = page;
        const form = Browser.fields(page);
        form.set('decision', 'allow');
        r = await this.fetch('/oauth/authorize', { method: 'POST', body: form });
        assert(r.status === 303, `consent answered ${r.status}, never 307`);
        continue;
      }
      const forms = [...page.matchAll(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)];
      const own = forms.find((m) => new URL(unescape(m[1]), base).pathname === here);
      assert(own, `no form of its own on ${here}`);
      r = await this.fetch(unescape(own[1]), { method: 'POST', body: Browser.fields(own[2]) });
    }
    throw new Error('too many steps between the authorization URL and the callback');
  }
}

function unescape(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const browser = new Browser();
const store = { client: undefined, tokens: undefined, verifier: undefined, callback: undefined };
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() {
    return {
      client_name: 'TypeScript SDK assistant',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  },
  clientInformation: () => store.client,
  saveClientInformation: (info) => { store.client = info; },
  tokens: () => store.tokens,
  saveTokens: (tokens) => { store.tokens = tokens; },
  saveCodeVerifier: (v) => { store.verifier = v; },
  codeVerifier: () => store.verifier,
  async redirectToAuthorization(url) {
    report.authorization_request = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'code_challenge'));
    store.callback = new URL(await browser.authorize(url.href));
  },
};

// Discovery starts with a 401 that names the resource metadata.
const anonymous = await fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
assert(anonymous.status === 401, `anonymous /mcp answered ${anonymous.status}`);
assert((anonymous.headers.get('www-authenticate') || '').includes('resource_metadata='), 'WWW-Authenticate');

async function connected() {
  const client = new Client({ name: 'qbo-mcp-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  return client;
}

let client;
try {
  client = await connected();
  throw new Error('connected without authorization');
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  assert(store.callback, 'no callback reached');
  report.callback_iss = store.callback.searchParams.get('iss');
  await transport.finishAuth(store.callback.searchParams);
}
client = await connected();
const tools = await client.listTools();
report.tools = tools.tools.map((t) => t.name);
const result = await client.callTool({ name: 'list_companies', arguments: {} });
report.companies = result.structuredContent;
await client.close();
report.client_id = store.client.client_id;
report.consent_page_names_client = browser.consentPage.includes('TypeScript SDK assistant');
report.consent_page_names_redirect_host = browser.consentPage.includes('127.0.0.1:43118');

// Refresh with the SDK's own function; the refresh token rotates.
const first = store.tokens;
const metadata = await discoverAuthorizationServerMetadata(new URL(base));
const refreshed = await refreshAuthorization(new URL(base), {
  metadata,
  clientInformation: store.client,
  refreshToken: first.refresh_token,
  resource: mcpUrl,
});
report.refreshed = refreshed.access_token !== first.access_token;
report.refresh_rotated = refreshed.refresh_token !== first.refresh_token;
store.tokens = refreshed;
client = await connected();
report.tools_after_refresh = (await client.listTools()).tools.map((t) => t.name);
await client.close();

// Revocation ends the grant.
const revoked = await fetch(`${base}/oauth/revoke`, {
  method: 'POST',
  body: new URLSearchParams({ token: refreshed.refresh_token, client_id: store.client.client_id }),
});
assert(revoked.status === 200, `revoke answered ${revoked.status}`);
const after = await fetch(mcpUrl, {
  method: 'POST',
  headers: {
    authorization: `Bearer ${refreshed.access_token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-11-25',
  },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
});
report.after_revocation_status = after.status;
console.log(JSON.stringify(report));
