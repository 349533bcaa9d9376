// sdk-oauth.test.mjs -- real parts end to end: the official TypeScript SDK client
// (StreamableHTTPClientTransport with the SDK's ClientCredentialsProvider) against a real
// authorization server (oidc-provider with RFC 8707 resource indicators, as.mjs) and the real
// server-everything, through the gateway. Starting from the gateway's 401 the client discovers
// the protected-resource metadata (through the gateway), the AS metadata, gets a token for the
// route's resource, and lists and calls tools; the gateway filters the list by scope and answers
// a call that needs more scope with a 403 insufficient_scope challenge (SPEC 2.1, C-07, C-11).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { startEverything } from './lib/everything.mjs';
import { OidcAS } from './lib/as.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';
import { jwtClaims } from './lib/frontdoor-upstream.mjs';

let dir, ev, as, gw, port, admin, resource;
const T = (fn) =>
    showLogsOnFailure(() => gw, async (t) => {
        try {
            await fn(t);
        } catch (e) {
            if (as) process.stderr.write(`\n--- oidc-provider output ---\n${as.out.slice(-2048)}\n`);
            if (ev) process.stderr.write(`\n--- server-everything stderr ---\n${ev.stderr.slice(-2048)}\n`);
            throw e;
        }
    });

before(async () => {
    dir = makeTempDir('mcpgate-sdk-oauth-');
    ev = await startEverything();
    let asPort;
    [port, admin, asPort] = await freePorts(3);
    resource = `http://127.0.0.1:${port}/mcp`; // byte for byte the URL the client dials
    as = await new OidcAS({ port: asPort, dir, resources: [resource], scopes: 'mcp:tools mcp:admin' }).start();
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: port,
            admin,
            timeouts: { upstream_timeout: '10s' },
            extra: `
issuer ${as.issuer} { allow_http on; }
route /mcp {
    upstream ${ev.url('/mcp')};
    resource ${resource};
    issuer ${as.issuer};
    scopes_supported mcp:tools mcp:admin;
    tool echo mcp:admin;
    resource_name "server-everything";
}
`,
        }),
    });
    // the issuer's keys come from discovery: wait until the gateway has them
    const until = Date.now() + 15000;
    for (let i = 0; i < 300 && Date.now() < until; i++) {
        if ((await rawRequest(admin, req('GET', '/readyz'))).status === 200) return;
        await sleep(50);
    }
    throw new Error('gateway not ready (issuer keys) within 15 s');
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (as) await as.stop();
        if (ev) await ev.stop();
        gw?.removeDir();
    }
});

/* A client with the SDK's client_credentials provider and a fetch that records every hop. */
function makeClient(scope) {
    const hops = [];
    const provider = new ClientCredentialsProvider({
        clientId: 'mcp-cc',
        clientSecret: 'mcp-cc-secret',
        scope,
        expectedIssuer: as.issuer,
    });
    const fetchFn = async (u, init) => {
        const r = await fetch(u, { ...init, signal: init?.signal ?? AbortSignal.timeout(10000) });
        hops.push({ method: init?.method || 'GET', url: String(u), status: r.status, www: r.headers.get('www-authenticate') });
        return r;
    };
    const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider, fetch: fetchFn });
    const client = new Client({ name: 'mcpgate-sdk-oauth', version: '0.0.0' });
    return { hops, provider, transport, client };
}

const hopList = (hops) => hops.map((h) => `${h.method} ${h.url} -> ${h.status}${h.www ? ` [${h.www}]` : ''}`).join('\n');

describe('SDK client_credentials client, oidc-provider, server-everything, through the gateway', () => {
    test('401 -> PRM -> AS metadata -> token for the resource -> tools listed (filtered) and called', T(async () => {
        const { hops, provider, transport, client } = makeClient('mcp:tools');
        try {
            await deadline(client.connect(transport), 20000, 'SDK connect with OAuth discovery');
            const trace = hopList(hops);
            // the discovery chain, in order
            assert.equal(hops[0].method, 'POST', trace);
            assert.equal(hops[0].url, resource, trace);
            assert.equal(hops[0].status, 401, trace);
            assert.equal(
                hops[0].www,
                `Bearer resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:admin"`,
            );
            const prm = hops.findIndex((h) => h.url === `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`);
            assert.ok(prm > 0 && hops[prm].status === 200, `PRM fetched through the gateway:\n${trace}`);
            const asMeta = hops.findIndex((h, i) => i > prm && h.url.startsWith(`${as.issuer}/.well-known/`) && h.status === 200);
            assert.ok(asMeta > prm, `AS metadata after the PRM:\n${trace}`);
            const tokenHop = hops.findIndex((h, i) => i > asMeta && h.method === 'POST' && h.url === `${as.issuer}/token`);
            assert.ok(tokenHop > asMeta && hops[tokenHop].status === 200, `token request:\n${trace}`);
            const retry = hops.findIndex((h, i) => i > tokenHop && h.method === 'POST' && h.url === resource);
            assert.ok(retry > tokenHop && hops[retry].status === 200, `initialize retried with the token:\n${trace}`);

            const claims = jwtClaims(provider.tokens().access_token);
            assert.equal(claims.iss, as.issuer);
            assert.equal(claims.aud, resource, 'the token names the route resource (RFC 8707)');
            assert.equal(claims.sub, 'mcp-cc');
            assert.equal(claims.client_id, 'mcp-cc');
            assert.equal(claims.scope, 'mcp:tools');
            assert.ok(transport.sessionId, 'session id through the gateway');
            assert.equal(client.getServerVersion().name, 'mcp-servers/everything');

            const { tools } = await deadline(client.listTools(), 10000, 'listTools');
            const names = tools.map((t) => t.name);
            assert.ok(names.includes('get-sum'), names.join(' '));
            assert.ok(!names.includes('echo'), `echo needs mcp:admin and must not be listed: ${names.join(' ')}`);

            const sum = await deadline(client.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } }), 10000, 'callTool get-sum');
            assert.match(JSON.stringify(sum.content), /42/);

            // echo needs mcp:admin: the gateway's 403 insufficient_scope. The SDK's
            // client_credentials provider asks again for its configured scope, gets the same
            // challenge text (C-11) and gives up instead of looping.
            const mark = hops.length;
            await assert.rejects(
                deadline(client.callTool({ name: 'echo', arguments: { message: 'x' } }), 15000, 'callTool echo'),
                /403/,
            );
            const denied = hops.slice(mark).filter((h) => h.url === resource && h.status === 403);
            assert.equal(denied.length, 2, `one 403, one retry after re-auth, then stop:\n${hopList(hops.slice(mark))}`);
            assert.equal(denied[0].www, denied[1].www, 'the same challenge text both times');
            assert.equal(
                denied[0].www,
                `Bearer resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:admin", ` +
                    'error="insufficient_scope", error_description="The access token lacks a required scope"',
            );
            await deadline(transport.terminateSession(), 5000, 'terminateSession');
        } finally {
            await client.close().catch(() => {});
        }
    }));

    test('a client granted mcp:admin sees echo and calls it', T(async () => {
        const { provider, transport, client } = makeClient('mcp:tools mcp:admin');
        try {
            await deadline(client.connect(transport), 20000, 'SDK connect');
            assert.equal(jwtClaims(provider.tokens().access_token).scope, 'mcp:tools mcp:admin');
            const { tools } = await deadline(client.listTools(), 10000, 'listTools');
            assert.ok(tools.some((t) => t.name === 'echo'), 'echo listed');
            const r = await deadline(client.callTool({ name: 'echo', arguments: { message: 'real parts' } }), 10000, 'callTool echo');
            assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: real parts' }]);
            await deadline(transport.terminateSession(), 5000, 'terminateSession');
        } finally {
            await client.close().catch(() => {});
        }
    }));
});
