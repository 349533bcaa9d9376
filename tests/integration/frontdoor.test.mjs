// frontdoor.test.mjs -- the MCP front door on protected routes, end to end (docs/mcp.md, SPEC
// 1.2, 1.5-1.8): step-up 403 challenges, tools/list filtering (application/json from a recording
// upstream, SSE from the real server-everything), what the upstream sees (no client credentials
// or forged identity, the verified identity, renamed headers, a signed X-MCP-Identity, a static
// upstream credential), session binding (hijack, token refresh, DELETE), Origin/CORS, Host,
// protocol versions, batches, 2026-07-28 header checks, malformed credentials, and the
// protected-resource metadata documents. Tokens are minted with mcpgate-token (jwks_file
// issuers).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { startEverything } from './lib/everything.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { request } from './lib/sse.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';
import { assertRpcError } from './lib/assert.mjs';
import { keygen, writeJwks, mint } from './lib/tokens.mjs';
import { McpState, mcpJson, ed25519Key, verifyEdDsaJwt, jwtClaims, headerValues } from './lib/frontdoor-upstream.mjs';

const ISS = 'https://issuer.frontdoor.test';
const ISS2 = 'https://second.frontdoor.test/tenant';
const ORIGIN_OK = 'http://app.example:3000';
const ORIGIN_OK2 = 'https://other-app.example';
const UPSTREAM_CRED = 'Bearer static-upstream-cred';

let dir, up, ev, gw, gwNoDefault, port, port2, key, key2, idKey;
const state = new McpState();
const T = (fn) =>
    showLogsOnFailure(() => [gw, gwNoDefault], async (t) => {
        try {
            await fn(t);
        } catch (e) {
            if (ev) process.stderr.write(`\n--- server-everything stderr ---\n${ev.stderr.slice(-2048)}\n`);
            throw e;
        }
    });

const res = (p) => `http://127.0.0.1:${port}${p}`;
const prmUrl = (p) => `http://127.0.0.1:${port}/.well-known/oauth-protected-resource${p}`;
const RM = (p = '/mcp') => `resource_metadata="${prmUrl(p)}"`;

/* Tokens: alice/bob from ISS, alice from ISS2 (same sub, other issuer). */
const tok = ({ sub = 'alice', scope = 'mcp:tools', aud = res('/mcp'), iss = ISS, clientId = 'cli-1' } = {}) =>
    mint(iss === ISS ? key : key2, { iss, aud, sub, scope: scope === null ? undefined : scope, clientId });

function conf() {
    return baseConfig({
        listen: port,
        timeouts: { upstream_timeout: '10s' },
        extra: `
issuer ${ISS} { jwks_file ${path.join(dir, 'iss.jwks.json')}; }
issuer ${ISS2} { jwks_file ${path.join(dir, 'iss2.jwks.json')}; }
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${res('/mcp')};
    issuer ${ISS2};
    issuer ${ISS};
    scopes_supported mcp:tools mcp:admin;
    tool echo mcp:admin;
    tool "admin_*" mcp:admin;
    allowed_origins ${ORIGIN_OK} ${ORIGIN_OK2};
    server_name 127.0.0.1 localhost;
    resource_name "mcpgate front-door test";
    default;
}
route /id {
    upstream ${up.url('/id')};
    resource ${res('/id')};
    issuer ${ISS};
}
route /id2 {
    upstream ${up.url('/id2')};
    resource ${res('/id2')};
    issuer ${ISS};
    identity_header subject X-User;
    identity_signing_key ${idKey.key};
    upstream_authorization "${UPSTREAM_CRED}";
}
route /ev {
    upstream ${ev.url('/mcp')};
    resource ${res('/ev')};
    issuer ${ISS};
    scopes_supported mcp:tools mcp:admin;
    tool echo mcp:admin;
    tool get-env mcp:admin;
}
`,
    });
}

before(async () => {
    dir = makeTempDir('mcpgate-frontdoor-');
    up = await Upstream.start();
    for (const p of ['/mcp', '/id', '/id2']) up.route(p, mcpJson(state));
    ev = await startEverything();
    [port, port2] = await freePorts(2);
    key = keygen(dir, 'ES256', 'fd-es-1');
    key2 = keygen(dir, 'EdDSA', 'fd-ed-2');
    writeJwks(path.join(dir, 'iss.jwks.json'), [key]);
    writeJwks(path.join(dir, 'iss2.jwks.json'), [key2]);
    idKey = ed25519Key(dir);
    gw = await startGateway({ dir, conf: conf() });
    gwNoDefault = await startGateway({
        dir,
        confName: 'nodefault.conf',
        conf: baseConfig({
            listen: port2,
            extra: `issuer ${ISS} { jwks_file ${path.join(dir, 'iss.jwks.json')}; }
route /mcp { upstream ${up.url('/mcp')}; resource http://127.0.0.1:${port2}/mcp; issuer ${ISS}; }
`,
        }),
    });
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        try {
            if (gwNoDefault) await gwNoDefault.stop();
        } finally {
            if (up) await up.stop();
            if (ev) await ev.stop();
            gw?.removeDir();
        }
    }
});

const JSONH = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const rpc = (id, method, params) => JSON.stringify(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
const callTool = (id, name, args = {}) => rpc(id, 'tools/call', { name, arguments: args });

/* POST <body> to <target> on the main gateway with raw bytes. */
function post(target, headers, body, p = port) {
    return rawRequest(p, req('POST', target, { ...JSONH, ...headers }, body));
}

/* The request is refused with <status> and nothing reaches the recording upstream. */
async function refused(promiseFn, status) {
    const mark = up.mark();
    const r = await promiseFn();
    await sleep(50);
    assert.equal(r.status, status, `status: ${r.status} ${JSON.stringify(r.headers)} ${r.text}`);
    assert.deepEqual(up.since(mark).map((x) => `${x.method} ${x.url}`), [], 'the upstream saw the refused request');
    return r;
}

/* The request reaches the upstream exactly once and is answered 200; returns {r, rec}. */
async function passed(promiseFn, status = 200) {
    const mark = up.mark();
    const r = await promiseFn();
    assert.equal(r.status, status, `status: ${r.status} ${r.headers['www-authenticate'] || ''} ${r.text}`);
    const recs = up.since(mark);
    assert.equal(recs.length, 1, `upstream requests: ${recs.map((x) => x.method + ' ' + x.url)}`);
    await recs[0].complete;
    return { r, rec: recs[0] };
}

// ---------------------------------------------------------------------------------------------

describe('step-up: 403 insufficient_scope names every needed scope (SPEC C-07, S-02, S-03, C-11)', () => {
    const STEPUP = () =>
        `Bearer ${RM()}, scope="mcp:tools mcp:admin", error="insufficient_scope", ` +
        `error_description="The access token lacks a required scope"`;

    test('tools/call echo without mcp:admin -> 403 with the full challenge, not forwarded', T(async () => {
        const r = await refused(() => post('/mcp', bearer(tok({ scope: 'mcp:tools' })), callTool(5, 'echo', { message: 'x' })), 403);
        assert.equal(r.headers['www-authenticate'], STEPUP());
        assert.equal(r.count('www-authenticate'), 1, 'one challenge line');
        assertRpcError(r, 403, -32001, 5);
    }));

    test('the challenge is the same bytes every time (C-11) and lists only scopes the route knows', T(async () => {
        const a = await refused(() => post('/mcp', bearer(tok({ scope: 'mcp:tools' })), callTool(6, 'echo')), 403);
        const b = await refused(() => post('/mcp', bearer(tok({ scope: 'mcp:tools unrelated:x' })), callTool(7, 'echo')), 403);
        assert.equal(a.headers['www-authenticate'], b.headers['www-authenticate']);
        assert.equal(b.headers['www-authenticate'], STEPUP());
        // a token with no scope at all: only the needed scope
        const c = await refused(() => post('/mcp', bearer(tok({ scope: null })), callTool(8, 'admin_reset')), 403);
        assert.equal(
            c.headers['www-authenticate'],
            `Bearer ${RM()}, scope="mcp:admin", error="insufficient_scope", error_description="The access token lacks a required scope"`,
        );
    }));

    test('the same call with mcp:admin is forwarded', T(async () => {
        const { r, rec } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools mcp:admin' })), callTool(9, 'echo', { message: 'hi' })));
        assert.equal(JSON.parse(rec.bodyText).params.name, 'echo');
        assert.equal(r.json().id, 9);
    }));

    test('no token -> 401 with resource_metadata and scopes_supported, no error (C-04, C-08)', T(async () => {
        const r = await refused(() => post('/mcp', {}, callTool(1, 'echo')), 401);
        assert.equal(r.headers['www-authenticate'], `Bearer ${RM()}, scope="mcp:tools mcp:admin"`);
        const r2 = await refused(() => post('/id', {}, rpc(1, 'tools/list')), 401);
        assert.equal(r2.headers['www-authenticate'], `Bearer ${RM('/id')}`, 'a route without scopes_supported names none');
    }));
});

describe('tools/list shows exactly the permitted tools (SPEC S-07, docs/mcp.md list filtering)', () => {
    const FULL = [
        { name: 'echo', inputSchema: { type: 'object' } },
        { name: 'get-sum', inputSchema: { type: 'object' } },
        { name: 'admin_reset', inputSchema: { type: 'object' } },
        { name: 'admin_', description: 'glob edge' },
        { name: 'echo2' },
    ];

    test('application/json: a mcp:tools caller sees the permitted tools only; public -> private', T(async () => {
        state.toolsResult = { tools: FULL, cacheScope: 'public', nextCursor: 'c1' };
        const { r } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools' })), rpc(11, 'tools/list')));
        assert.match(r.headers['content-type'], /^application\/json/);
        const j = r.json();
        assert.equal(j.id, 11);
        assert.deepEqual(j.result.tools.map((t) => t.name), ['get-sum', 'echo2']);
        assert.equal(j.result.cacheScope, 'private', 'filtering removed entries: the list is no longer public');
        assert.equal(j.result.nextCursor, 'c1', 'other members kept');
        if (r.headers['content-length'] !== undefined) {
            assert.equal(Number(r.headers['content-length']), r.body.length, 'Content-Length matches the new body');
        } else {
            assert.ok(r.chunked, `a filtered body is framed (chunked or Content-Length): ${JSON.stringify(r.headers)}`);
        }
    }));

    test('application/json: a caller allowed everything gets every tool and cacheScope stays public', T(async () => {
        state.toolsResult = { tools: FULL, cacheScope: 'public' };
        const { r } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools mcp:admin' })), rpc(12, 'tools/list')));
        const j = r.json();
        assert.deepEqual(j.result.tools.map((t) => t.name), FULL.map((t) => t.name));
        assert.equal(j.result.cacheScope, 'public');
    }));

    test('application/json: entries without a string name are dropped (fail closed)', T(async () => {
        state.toolsResult = { tools: [{ name: 'get-sum' }, { title: 'no name' }, { name: 7 }, { name: null }], cacheScope: 'public' };
        const { r } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools mcp:admin' })), rpc(13, 'tools/list')));
        assert.deepEqual(r.json().result.tools, [{ name: 'get-sum' }]);
        assert.equal(r.json().result.cacheScope, 'private');
    }));

    test('application/json: duplicate keys -- what the client reads (the last value) is what is filtered', T(async () => {
        state.rawListBody = (id) =>
            `{"jsonrpc":"2.0","id":${id},"result":{"tools":[{"name":"get-sum","name":"echo"},{"name":"echo","name":"get-sum"}]}}`;
        try {
            const { r } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools' })), rpc(14, 'tools/list')));
            const names = r.json().result.tools.map((t) => t.name);
            assert.deepEqual(names, ['get-sum'], r.text);
        } finally {
            state.rawListBody = null;
        }
    }));

    test('application/json: a list body the gateway cannot parse does not leak forbidden tools (\\u0000, lone surrogate)', T(async () => {
        // JavaScript's JSON.parse accepts "\u0000" and a lone "\ud800" in a string; a gateway
        // that fails to parse the body must not relay the unfiltered list to a client that can.
        const leaks = [];
        for (const esc of ['\\u0000', '\\ud800']) {
            state.rawListBody = (id) =>
                `{"jsonrpc":"2.0","id":${id},"result":{"tools":[{"name":"get-sum","description":"a${esc}b"},{"name":"echo"},{"name":"admin_reset"}]}}`;
            try {
                const mark = up.mark();
                let r = null;
                try {
                    r = await post('/mcp', bearer(tok({ scope: 'mcp:tools' })), rpc(15, 'tools/list'));
                } catch {
                    /* an aborted response is fine: nothing leaked */
                }
                assert.equal(up.since(mark).length, 1);
                let names = [];
                try {
                    names = JSON.parse(r.text).result.tools.map((t) => t.name);
                } catch {
                    /* an error reply is fine: nothing leaked */
                }
                if (names.includes('echo') || names.includes('admin_reset')) leaks.push(`${esc}: ${r.status} ${r.text}`);
            } finally {
                state.rawListBody = null;
            }
        }
        assert.deepEqual(leaks, [], 'forbidden tools visible to the client');
    }));

    test('a list labelled with another Content-Type (or none) is filtered all the same', T(async () => {
        // clients parse the body whatever the label says: filtering by label would fail open
        state.toolsResult = { tools: FULL, cacheScope: 'public' };
        for (const ct of ['text/plain', 'application/octet-stream', '']) {
            state.listContentType = ct;
            try {
                const { r } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools' })), rpc(16, 'tools/list')));
                const names = JSON.parse(r.text).result.tools.map((t) => t.name);
                assert.ok(!names.includes('echo') && !names.includes('admin_reset'), `${ct || '(none)'}: ${names}`);
                assert.ok(names.includes('get-sum'), `${ct || '(none)'}: ${names}`);
            } finally {
                state.listContentType = null;
            }
        }
    }));

    test('SSE (crafted upstream): the list event is filtered, public -> private, the event id kept', T(async () => {
        state.toolsResult = { tools: FULL, cacheScope: 'public' };
        state.sseList = true;
        try {
            const { r } = await passed(() => post('/mcp', bearer(tok({ scope: 'mcp:tools' })), rpc(19, 'tools/list')));
            assert.match(r.headers['content-type'], /^text\/event-stream/);
            assert.match(r.text, /^event: message\nid: ev-1\ndata: /, r.text);
            const data = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
            assert.equal(data.length, 1, r.text);
            const j = JSON.parse(data[0]);
            assert.deepEqual(j.result.tools.map((t) => t.name), ['get-sum', 'echo2']);
            assert.equal(j.result.cacheScope, 'private');
        } finally {
            state.sseList = false;
        }
    }));

    test('SSE (crafted upstream): a list event the gateway cannot parse does not leak forbidden tools', T(async () => {
        state.rawListBody = (id) =>
            `{"jsonrpc":"2.0","id":${id},"result":{"tools":[{"name":"get-sum","description":"a\\u0000b"},{"name":"echo"},{"name":"admin_reset"}]}}`;
        state.sseList = true;
        try {
            const mark = up.mark();
            let text = '';
            try {
                const r = await post('/mcp', bearer(tok({ scope: 'mcp:tools' })), rpc(20, 'tools/list'));
                text = r.text;
            } catch {
                /* an aborted response is fine: nothing leaked */
            }
            assert.equal(up.since(mark).length, 1);
            assert.ok(!/"echo"|admin_reset/.test(text), `forbidden tools visible to the client: ${text}`);
        } finally {
            state.sseList = false;
            state.rawListBody = null;
        }
    }));

    test('application/json: a permitted call passes, a non-permitted one is refused 403', T(async () => {
        const t = tok({ scope: 'mcp:tools' });
        await passed(() => post('/mcp', bearer(t), callTool(16, 'get-sum', { a: 1, b: 2 })));
        await passed(() => post('/mcp', bearer(t), callTool(17, 'echo2')));
        for (const name of ['echo', 'admin_reset', 'admin_']) {
            const r = await refused(() => post('/mcp', bearer(t), callTool(18, name)), 403);
            assert.match(r.headers['www-authenticate'], /error="insufficient_scope"/);
        }
    }));

    describe('SSE (server-everything)', () => {
        let sid, all;
        const EV = () => res('/ev');
        const evPost = (t, body, extra = {}) =>
            request(EV(), {
                method: 'POST',
                headers: { ...JSONH, ...bearer(t), ...(sid ? { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18' } : {}), ...extra },
                body,
                timeout: 10000,
            });
        const resultOf = (r, id) => {
            assert.equal(r.status, 200, `${r.status} ${r.headers['www-authenticate'] || ''} ${r.text}`);
            assert.match(r.headers['content-type'], /^text\/event-stream/);
            const e = r.events.find((x) => x.json && x.json.id === id);
            assert.ok(e, `response ${id} among ${r.text}`);
            assert.ok(!e.json.error, e.data);
            return e.json.result;
        };

        before(async () => {
            const admin = tok({ aud: res('/ev'), scope: 'mcp:tools mcp:admin' });
            const r = await evPost(admin, rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fd', version: '0' } }));
            resultOf(r, 1);
            sid = r.headers['mcp-session-id'];
            assert.ok(sid, 'session id');
            assert.equal((await evPost(admin, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }))).status, 202);
            all = resultOf(await evPost(admin, rpc(2, 'tools/list')), 2).tools.map((t) => t.name);
        });

        test('the full list (mcp:admin) includes echo and get-env; mcp:tools sees all but those two', T(async () => {
            assert.ok(all.includes('echo') && all.includes('get-env') && all.includes('get-sum'), all.join(' '));
            const limited = resultOf(await evPost(tok({ aud: res('/ev'), scope: 'mcp:tools' }), rpc(3, 'tools/list')), 3);
            assert.deepEqual(
                limited.tools.map((t) => t.name),
                all.filter((n) => n !== 'echo' && n !== 'get-env'),
            );
        }));

        test('SSE: get-sum passes, echo is refused 403 insufficient_scope', T(async () => {
            const t = tok({ aud: res('/ev'), scope: 'mcp:tools' });
            const ok = resultOf(await evPost(t, callTool(4, 'get-sum', { a: 2, b: 3 })), 4);
            assert.match(JSON.stringify(ok.content), /5/);
            const r = await evPost(t, callTool(5, 'echo', { message: 'x' }));
            assert.equal(r.status, 403, r.text);
            assert.equal(
                r.headers['www-authenticate'],
                `Bearer ${RM('/ev')}, scope="mcp:tools mcp:admin", error="insufficient_scope", error_description="The access token lacks a required scope"`,
            );
        }));

        test('SSE: a browser caller from the resource origin gets one CORS grant, not the upstream\'s as well', T(async () => {
            // server-everything answers with its own permissive CORS headers; a response with two
            // Access-Control-Allow-Origin values is refused by browsers.
            const o = `http://127.0.0.1:${port}`;
            const r = await rawRequest(
                port,
                req('POST', '/ev', { ...JSONH, ...bearer(tok({ aud: res('/ev'), scope: 'mcp:tools' })), 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18', Origin: o }, rpc(9, 'tools/list')),
                { timeout: 10000 },
            );
            assert.equal(r.status, 200, r.text);
            assert.deepEqual(
                r.headerList.filter(([k]) => k === 'access-control-allow-origin').map(([, v]) => v),
                [o],
                `Access-Control-Allow-Origin lines: ${JSON.stringify(r.headerList)}`,
            );
        }));

        test('SSE: another caller reusing the session id gets 404; the owner keeps working', T(async () => {
            const bob = tok({ aud: res('/ev'), sub: 'bob', scope: 'mcp:tools mcp:admin' });
            const r = await evPost(bob, rpc(6, 'tools/list'));
            assert.equal(r.status, 404, r.text);
            const fresh = tok({ aud: res('/ev'), scope: 'mcp:tools mcp:admin' });
            resultOf(await evPost(fresh, callTool(7, 'echo', { message: 'still mine' })), 7);
            const d = await request(EV(), { method: 'DELETE', headers: { ...bearer(fresh), 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18' } });
            assert.equal(d.status, 200, d.text);
            const gone = await evPost(fresh, rpc(8, 'tools/list'));
            assert.equal(gone.status, 404, `after DELETE: ${gone.status} ${gone.text}`);
        }));
    });
});

describe('what the upstream sees (SPEC 1.6, docs/mcp.md identity)', () => {
    const FORGED = {
        'X-MCP-Subject': 'root',
        'x-mcp-client-id': 'evil-client',
        'X-MCP-SCOPES': 'everything',
        'X-MCP-Issuer': 'https://evil.example',
        'X-MCP-Identity': 'forged.jwt.value',
        'X-User': 'root',
        DPoP: 'proof',
    };

    test('no Authorization, DPoP or forged X-MCP-*; the verified identity in the default headers', T(async () => {
        const t = tok({ aud: res('/id'), scope: 'mcp:tools mcp:admin', clientId: 'cli-9' });
        const { rec } = await passed(() => post('/id', { ...bearer(t), ...FORGED }, rpc(21, 'tools/list')));
        assert.deepEqual(headerValues(rec, 'authorization'), [], 'the client token never goes upstream');
        assert.deepEqual(headerValues(rec, 'dpop'), []);
        assert.deepEqual(headerValues(rec, 'x-mcp-identity'), [], 'no signing key: no X-MCP-Identity, and the forged one is gone');
        assert.deepEqual(headerValues(rec, 'x-mcp-subject'), ['alice']);
        assert.deepEqual(headerValues(rec, 'x-mcp-client-id'), ['cli-9']);
        assert.deepEqual(headerValues(rec, 'x-mcp-scopes'), ['mcp:tools mcp:admin']);
        assert.deepEqual(headerValues(rec, 'x-mcp-issuer'), [ISS]);
        assert.deepEqual(headerValues(rec, 'x-user'), ['root'], 'X-User is not an identity header on this route');
        assert.equal(rec.url, '/id');
    }));

    test('identity_header subject X-User, identity_signing_key, upstream_authorization', T(async () => {
        const t = tok({ aud: res('/id2'), scope: 'mcp:tools', clientId: 'cli-2' });
        const before = Math.floor(Date.now() / 1000);
        const { rec } = await passed(() => post('/id2', { ...bearer(t), ...FORGED }, rpc(22, 'tools/list')));
        assert.deepEqual(headerValues(rec, 'x-user'), ['alice'], 'renamed subject header, forged copy removed');
        assert.deepEqual(headerValues(rec, 'x-mcp-subject'), [], 'the default name is not sent (and the forged one removed)');
        assert.deepEqual(headerValues(rec, 'x-mcp-client-id'), ['cli-2']);
        assert.deepEqual(headerValues(rec, 'x-mcp-scopes'), ['mcp:tools']);
        assert.deepEqual(headerValues(rec, 'x-mcp-issuer'), [ISS]);
        assert.deepEqual(headerValues(rec, 'authorization'), [UPSTREAM_CRED], 'only the configured upstream credential');
        assert.deepEqual(headerValues(rec, 'dpop'), []);
        const ids = headerValues(rec, 'x-mcp-identity');
        assert.equal(ids.length, 1, `one X-MCP-Identity: ${ids}`);
        const { header, claims } = verifyEdDsaJwt(ids[0], idKey.publicKey);
        assert.deepEqual(header, { alg: 'EdDSA', typ: 'mcp-identity+jwt' });
        assert.equal(claims.iss, res('/id2'));
        assert.equal(claims.aud, up.url('/id2'));
        assert.equal(claims.sub, 'alice');
        assert.equal(claims.client_id, 'cli-2');
        assert.equal(claims.scope, 'mcp:tools');
        assert.equal(claims.token_iss, ISS);
        assert.equal(claims.token_jti, jwtClaims(t).jti);
        assert.ok(claims.iat >= before - 2 && claims.iat <= Math.floor(Date.now() / 1000) + 2, `iat ${claims.iat}`);
        assert.equal(claims.exp - claims.iat, 60);
    }));
});

describe('sessions are bound to the caller (SPEC SS-03, SS-04)', () => {
    let sid;
    const sess = (t, extra = {}) => ({ ...bearer(t), 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-06-18', ...extra });

    before(async () => {
        const r = await post('/mcp', bearer(tok()), rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'a', version: '0' } }));
        assert.equal(r.status, 200, r.text);
        sid = r.headers['mcp-session-id'];
        assert.equal(sid, state.lastSession, 'the upstream session id is relayed');
    });

    test('the owner uses the session', T(async () => {
        const { rec } = await passed(() => post('/mcp', sess(tok()), rpc(2, 'tools/list')));
        assert.equal(rec.headers['mcp-session-id'], sid);
    }));

    test('another subject, or the same subject of another issuer, gets 404 and the upstream sees nothing', T(async () => {
        const posts = [];
        for (const [who, t] of [['bob', tok({ sub: 'bob', scope: 'mcp:tools mcp:admin' })], ['alice@ISS2', tok({ iss: ISS2 })]]) {
            posts.push([who, await refused(() => post('/mcp', sess(t), rpc(3, 'tools/list')), 404)]);
            await refused(() => rawRequest(port, req('GET', '/mcp', { Accept: 'text/event-stream', ...sess(t) })), 404);
            await refused(() => rawRequest(port, req('DELETE', '/mcp', sess(t))), 404);
        }
        // the owner's session survived the attempts
        await passed(() => post('/mcp', sess(tok()), rpc(3, 'tools/list')));
        // docs/mcp.md step 6: "Session not found" is JSON-RPC -32001
        for (const [who, r] of posts) assertRpcError(r, 404, -32001, 3, who);
    }));

    test('an unknown session id gets 404', T(async () => {
        const r = await refused(() => post('/mcp', { ...sess(tok()), 'Mcp-Session-Id': 'never-issued-1234' }, rpc(4, 'tools/list')), 404);
        assertRpcError(r, 404, -32001, 4);
    }));

    test('the owner with a refreshed token (new jti, same iss/sub) keeps the session', T(async () => {
        const a1 = tok();
        const a2 = tok({ scope: 'mcp:tools mcp:admin' });
        assert.notEqual(jwtClaims(a1).jti, jwtClaims(a2).jti);
        await passed(() => post('/mcp', sess(a2), callTool(5, 'echo')));
    }));

    test('after the owner DELETEs the session, its id is unknown (404)', T(async () => {
        const { rec } = await passed(() => rawRequest(port, req('DELETE', '/mcp', sess(tok()))));
        assert.equal(rec.method, 'DELETE');
        const r = await refused(() => post('/mcp', sess(tok()), rpc(6, 'tools/list')), 404);
        await refused(() => rawRequest(port, req('DELETE', '/mcp', sess(tok()))), 404);
        assertRpcError(r, 404, -32001, 6);
    }));
});

describe('Origin, CORS and Host (SPEC H-09, H-16, C-15)', () => {
    test('an allowed Origin passes, with CORS headers exposing WWW-Authenticate and Mcp-Session-Id', T(async () => {
        const { r } = await passed(() => post('/mcp', { ...bearer(tok()), Origin: ORIGIN_OK }, rpc(31, 'tools/list')));
        assert.equal(r.headers['access-control-allow-origin'], ORIGIN_OK);
        const exposed = (r.headers['access-control-expose-headers'] || '').split(',').map((s) => s.trim().toLowerCase());
        for (const h of ['www-authenticate', 'mcp-session-id']) assert.ok(exposed.includes(h), `${h} exposed: ${exposed}`);
        assert.match(r.headers.vary || '', /\bOrigin\b/i);
    }));

    test('the origin of the resource is allowed; other allowed origins match case-insensitively', T(async () => {
        await passed(() => post('/mcp', { ...bearer(tok()), Origin: `http://127.0.0.1:${port}` }, rpc(32, 'tools/list')));
        await passed(() => post('/mcp', { ...bearer(tok()), Origin: ORIGIN_OK2.toUpperCase().replace('HTTPS', 'https') }, rpc(33, 'tools/list')));
    }));

    test('error responses carry the CORS headers too (C-15)', T(async () => {
        const r = await refused(() => post('/mcp', { Origin: ORIGIN_OK }, rpc(34, 'tools/list')), 401);
        assert.equal(r.headers['access-control-allow-origin'], ORIGIN_OK);
        assert.match(r.headers['access-control-expose-headers'] || '', /WWW-Authenticate/i);
        const s = await refused(() => post('/mcp', { ...bearer(tok()), Origin: ORIGIN_OK }, callTool(35, 'echo')), 403);
        assert.equal(s.headers['access-control-allow-origin'], ORIGIN_OK);
    }));

    test('another Origin -> 403 before the token is looked at; the upstream sees nothing', T(async () => {
        for (const o of ['http://evil.example', 'http://app.example:3001', 'null', `http://localhost:${port}`]) {
            const r = await refused(() => post('/mcp', { ...bearer(tok()), Origin: o }, rpc(36, 'tools/list')), 403);
            assert.equal(r.headers['access-control-allow-origin'], undefined, `${o}: no CORS grant`);
            assert.equal(r.headers['www-authenticate'], undefined, `${o}: not an auth failure`);
        }
        // without any token: still 403 (Origin is checked first), not 401
        await refused(() => post('/mcp', { Origin: 'http://evil.example' }, rpc(37, 'tools/list')), 403);
        // two Origin headers
        await refused(() => post('/mcp', { ...bearer(tok()), Origin: [ORIGIN_OK, 'http://evil.example'] }, rpc(38, 'tools/list')), 403);
    }));

    test('preflight: OPTIONS with an allowed Origin -> 204, no token needed, the MCP headers allowed', T(async () => {
        const r = await refused(
            () =>
                rawRequest(
                    port,
                    req('OPTIONS', '/mcp', {
                        Origin: ORIGIN_OK,
                        'Access-Control-Request-Method': 'POST',
                        'Access-Control-Request-Headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version',
                    }),
                ),
            204,
        );
        assert.equal(r.count('access-control-allow-origin'), 1, `one Access-Control-Allow-Origin line: ${JSON.stringify(r.headerList)}`);
        assert.equal(r.headers['access-control-allow-origin'], ORIGIN_OK);
        const allowed = (r.headers['access-control-allow-headers'] || '').split(',').map((s) => s.trim().toLowerCase());
        for (const h of ['authorization', 'mcp-session-id', 'mcp-protocol-version', 'content-type']) {
            assert.ok(allowed.includes(h), `${h} in Access-Control-Allow-Headers: ${r.headers['access-control-allow-headers']}`);
        }
        assert.match(r.headers['access-control-allow-methods'] || '', /\bPOST\b/);
        assert.equal(r.headers['www-authenticate'], undefined);
    }));

    test('204 replies carry no Content-Length (RFC 9110 section 8.6)', T(async () => {
        const bad = [];
        for (const [what, bytes] of [
            ['route preflight', req('OPTIONS', '/mcp', { Origin: ORIGIN_OK, 'Access-Control-Request-Method': 'POST' })],
            ['metadata preflight', req('OPTIONS', '/.well-known/oauth-protected-resource/mcp', { Origin: ORIGIN_OK })],
        ]) {
            const r = await rawRequest(port, bytes);
            assert.equal(r.status, 204, what);
            if (r.headers['content-length'] !== undefined) bad.push(`${what}: Content-Length: ${r.headers['content-length']}`);
        }
        assert.deepEqual(bad, []);
    }));

    test('preflight from another Origin -> 403', T(async () => {
        const r = await refused(
            () => rawRequest(port, req('OPTIONS', '/mcp', { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' })),
            403,
        );
        assert.equal(r.headers['access-control-allow-origin'], undefined);
    }));

    test('server_name: another Host -> 403, nothing forwarded; a listed name (any case, any port) passes', T(async () => {
        for (const h of ['evil.example', `evil.example:${port}`, '127.0.0.2', 'localhost.evil']) {
            const r = await refused(() => post('/mcp', { ...bearer(tok()), Host: h }, rpc(39, 'tools/list')), 403);
            assert.equal(r.headers['www-authenticate'], undefined, h);
        }
        await passed(() => post('/mcp', { ...bearer(tok()), Host: 'LOCALHOST:1234' }, rpc(40, 'tools/list')));
        await passed(() => post('/mcp', { ...bearer(tok()), Host: 'localhost.' }, rpc(41, 'tools/list')));
    }));
});

describe('protocol versions, batches and 2026-07-28 headers (SPEC H-03, H-05, H-06, H-07)', () => {
    test('MCP-Protocol-Version: 1999-01-01 -> 400, not forwarded', T(async () => {
        const r = await refused(() => post('/mcp', { ...bearer(tok()), 'MCP-Protocol-Version': '1999-01-01' }, rpc(51, 'tools/list')), 400);
        assertRpcError(r, 400, -32022, 51);
    }));

    test('no MCP-Protocol-Version: read as 2025-03-26 and forwarded (a batch is then allowed)', T(async () => {
        const { rec } = await passed(() => post('/mcp', bearer(tok()), rpc(52, 'tools/list')));
        assert.equal(JSON.parse(rec.bodyText).method, 'tools/list');
        const batch = `[${rpc(53, 'tools/list')},${callTool(54, 'get-sum', { a: 1, b: 1 })}]`;
        const b = await passed(() => post('/mcp', bearer(tok()), batch));
        assert.equal(b.rec.bodyText, batch, 'the batch is forwarded unchanged');
        assert.deepEqual(b.r.json().map((x) => x.id), [53, 54]);
    }));

    test('a batch under 2025-06-18 -> 400 -32600 (id null), not forwarded', T(async () => {
        const batch = `[${rpc(55, 'tools/list')},${rpc(56, 'tools/list')}]`;
        const r = await refused(() => post('/mcp', { ...bearer(tok()), 'MCP-Protocol-Version': '2025-06-18' }, batch), 400);
        assertRpcError(r, 400, -32600, null);
    }));

    test('a batch under 2025-03-26: every element authorized, one denied element refuses it all (403)', T(async () => {
        const batch = `[${rpc(57, 'tools/list')},${callTool(58, 'echo')},${callTool(59, 'get-sum')}]`;
        const r = await refused(() => post('/mcp', { ...bearer(tok({ scope: 'mcp:tools' })), 'MCP-Protocol-Version': '2025-03-26' }, batch), 403);
        assert.equal(
            r.headers['www-authenticate'],
            `Bearer ${RM()}, scope="mcp:tools mcp:admin", error="insufficient_scope", error_description="The access token lacks a required scope"`,
        );
        await passed(() => post('/mcp', { ...bearer(tok({ scope: 'mcp:tools mcp:admin' })), 'MCP-Protocol-Version': '2025-03-26' }, batch));
    }));

    const META = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
    const modern = (id, method, params = {}) => rpc(id, method, { ...params, _meta: META });

    test('2026-07-28: matching Mcp-Method / Mcp-Name are forwarded', T(async () => {
        await passed(() =>
            post('/mcp', { ...bearer(tok()), 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'get-sum' }, modern(61, 'tools/call', { name: 'get-sum', arguments: {} })),
        );
    }));

    test('2026-07-28: Mcp-Method not matching the body -> 400 -32020, not forwarded', T(async () => {
        const r = await refused(
            () => post('/mcp', { ...bearer(tok()), 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list' }, modern(62, 'tools/call', { name: 'get-sum', arguments: {} })),
            400,
        );
        assertRpcError(r, 400, -32020, 62);
    }));

    test('2026-07-28: Mcp-Name not matching params.name -> 400 -32020 (a policy bypass attempt)', T(async () => {
        const r = await refused(
            () =>
                post('/mcp', { ...bearer(tok()), 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'get-sum' }, modern(63, 'tools/call', { name: 'echo', arguments: {} })),
            400,
        );
        assertRpcError(r, 400, -32020, 63);
    }));

    test('2026-07-28: header version different from _meta -> 400 -32020', T(async () => {
        const r = await refused(
            () => post('/mcp', { ...bearer(tok()), 'MCP-Protocol-Version': '2025-11-25', 'Mcp-Method': 'tools/list' }, modern(64, 'tools/list')),
            400,
        );
        assertRpcError(r, 400, -32020, 64);
    }));
});

describe('malformed credentials (SPEC C-04, C-06, docs/mcp.md challenges)', () => {
    const invalidReq = () =>
        new RegExp(`^Bearer ${RM().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, error="invalid_request", error_description="[^"]+"$`);

    test('two Authorization headers -> 400 invalid_request challenge', T(async () => {
        // refused by the HTTP parser before routing, so the challenge cannot name the
        // route's metadata; it still says invalid_request
        const t = tok();
        const r = await refused(() => post('/mcp', { Authorization: [`Bearer ${t}`, `Bearer ${t}`] }, rpc(71, 'tools/list')), 400);
        assert.equal(r.headers['www-authenticate'], 'Bearer error="invalid_request", error_description="Send one Authorization header."');
    }));

    test('Bearer with garbage, or with nothing -> 400 invalid_request', T(async () => {
        for (const h of ['Bearer !!!not-a-token!!!', 'Bearer', 'Bearer ', 'Bearer a b', 'Bearer "abc"']) {
            const r = await refused(() => post('/mcp', { Authorization: h }, rpc(72, 'tools/list')), 400);
            assert.match(r.headers['www-authenticate'] || '(none)', invalidReq(), h);
            assertRpcError(r, 400, -32600, null, h);
        }
    }));

    test('a token in the query -> 400 invalid_request, even with a valid header', T(async () => {
        const t = tok();
        const r = await refused(() => post(`/mcp?access_token=${t}`, {}, rpc(73, 'tools/list')), 400);
        assert.match(r.headers['www-authenticate'] || '(none)', invalidReq());
        const r2 = await refused(() => post(`/mcp?x=1&access_token=${t}`, bearer(t), rpc(74, 'tools/list')), 400);
        assert.match(r2.headers['www-authenticate'] || '(none)', invalidReq());
    }));

    test('a token in a form body -> 400 invalid_request', T(async () => {
        const t = tok();
        const r = await refused(
            () => rawRequest(port, req('POST', '/mcp', { 'Content-Type': 'application/x-www-form-urlencoded', ...bearer(t) }, `access_token=${t}`)),
            400,
        );
        assert.match(r.headers['www-authenticate'] || '(none)', invalidReq());
    }));

    test('a non-Bearer scheme is a malformed credential for this resource: 400 invalid_request (issue 5)', T(async () => {
        // SPEC C-04 would allow reading it as "no credentials" (401); the project's issue 5
        // asks for 400, which tells the client plainly that only Bearer tokens are taken here
        for (const h of ['Basic dXNlcjpwYXNz', 'Token abc', 'DPoP abc.def.ghi']) {
            const r = await refused(() => post('/mcp', { Authorization: h }, rpc(75, 'tools/list')), 400);
            assert.match(r.headers['www-authenticate'] || '(none)', invalidReq(), h);
        }
    }));
});

describe('protected-resource metadata (SPEC 1.1)', () => {
    const docMcp = () =>
        JSON.stringify({
            resource: res('/mcp'),
            authorization_servers: [ISS2, ISS],
            scopes_supported: ['mcp:tools', 'mcp:admin'],
            bearer_methods_supported: ['header'],
            resource_name: 'mcpgate front-door test',
        });

    test('path form: exact document, Cache-Control, CORS, no auth', T(async () => {
        const r = await refused(() => rawRequest(port, req('GET', '/.well-known/oauth-protected-resource/mcp')), 200);
        assert.equal(r.text, docMcp());
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.equal(r.headers['cache-control'], 'public, max-age=3600');
        assert.equal(r.headers['access-control-allow-origin'], '*');
        const id = await rawRequest(port, req('GET', '/.well-known/oauth-protected-resource/id'));
        assert.equal(id.status, 200);
        assert.equal(id.text, JSON.stringify({ resource: res('/id'), authorization_servers: [ISS], bearer_methods_supported: ['header'] }));
    }));

    test('the query is ignored, a trailing slash too; HEAD has no body; other methods 405', T(async () => {
        for (const p of ['/.well-known/oauth-protected-resource/mcp?resource=x', '/.well-known/oauth-protected-resource/mcp/']) {
            const r = await rawRequest(port, req('GET', p));
            assert.equal(r.status, 200, p);
            assert.equal(r.text, docMcp(), p);
        }
        const h = await rawRequest(port, req('HEAD', '/.well-known/oauth-protected-resource/mcp'));
        assert.equal(h.status, 200);
        assert.equal(h.body.length, 0);
        const p = await rawRequest(port, req('POST', '/.well-known/oauth-protected-resource/mcp', {}, '{}'));
        assert.equal(p.status, 405);
        assert.match(p.headers.allow || '', /GET/);
    }));

    test('the URL in every challenge is the document that describes the route', T(async () => {
        const r = await post('/mcp', {}, rpc(81, 'tools/list'));
        const url = /resource_metadata="([^"]+)"/.exec(r.headers['www-authenticate'])[1];
        const d = await request(url);
        assert.equal(d.status, 200);
        assert.equal(d.json.resource, res('/mcp'));
    }));

    test('bare /.well-known/oauth-protected-resource: the default route document; 404 without a default route', T(async () => {
        const r = await rawRequest(port, req('GET', '/.well-known/oauth-protected-resource'));
        assert.equal(r.status, 200);
        assert.equal(r.text, docMcp());
        assert.equal(r.headers['cache-control'], 'public, max-age=3600');
        const n = await rawRequest(port2, req('GET', '/.well-known/oauth-protected-resource'));
        assert.equal(n.status, 404, n.text);
        const pf = await rawRequest(port2, req('GET', '/.well-known/oauth-protected-resource/mcp'));
        assert.equal(pf.status, 200, 'the path form is served on the other gateway');
        assert.equal(pf.json().resource, `http://127.0.0.1:${port2}/mcp`);
    }));

    test('an unknown path form and the OpenID configuration -> 404', T(async () => {
        for (const p of ['/.well-known/oauth-protected-resource/nope', '/.well-known/openid-configuration']) {
            const r = await rawRequest(port, req('GET', p));
            assert.equal(r.status, 404, p);
        }
    }));
});
