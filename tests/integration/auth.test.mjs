// auth.test.mjs -- protected routes with local key sets: keys and tokens from mcpgate-token,
// an issuer with jwks_file, every request checked before anything reaches the upstream.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir, checkConfig } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { assertRpcError } from './lib/assert.mjs';
import { keygen, writeJwks, mint, algNoneToken, hmacWithPublicKey, tamper } from './lib/tokens.mjs';

const ISS = 'https://issuer.test.invalid';
const ISS2 = 'https://second.test.invalid/tenant';
let gw, up, port, dir, resource, es, rs, ed, other, jwksFile;
const T = (fn) => showLogsOnFailure(() => gw, fn);
/* The RFC 9728 pointer every challenge on the route carries (SPEC C-03, D-21). */
const RM = () => `resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp"`;

function conf(extraIssuers = '') {
    return baseConfig({
        listen: port,
        routes: [['/open', up.url('/open')]],
        extra: `
issuer ${ISS} { jwks_file ${jwksFile}; }
issuer ${ISS2} { jwks_file ${path.join(dir, 'second.jwks.json')}; algorithms ES256; leeway 0s; }
${extraIssuers}
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${resource};
    issuer ${ISS};
    issuer ${ISS2};
}
`,
    });
}

before(async () => {
    up = await Upstream.start();
    [port] = await freePorts(1);
    dir = makeTempDir('mcpgate-auth-');
    resource = `http://127.0.0.1:${port}/mcp`;
    es = keygen(dir, 'ES256', 'es-1');
    rs = keygen(dir, 'RS256', 'rs-1');
    ed = keygen(dir, 'EdDSA', 'ed-1');
    fs.mkdirSync(path.join(dir, 'forger'));
    other = keygen(path.join(dir, 'forger'), 'ES256', 'es-1'); // same kid, different key
    jwksFile = writeJwks(path.join(dir, 'issuer.jwks.json'), [es, rs, ed]);
    const second = keygen(dir, 'ES256', 'second-1');
    writeJwks(path.join(dir, 'second.jwks.json'), [second]);
    fs.copyFileSync(second.key, path.join(dir, 'second.pem'));
    gw = await startGateway({ dir, conf: conf() });
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

const rpc = '{"jsonrpc":"2.0","id":7,"method":"tools/list"}';
const post = (headers = {}, target = '/mcp') =>
    req('POST', target, { 'Content-Type': 'application/json', ...headers }, rpc);
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

/* The request is refused with <status>: nothing reached the upstream. */
async function refused(bytes, status) {
    const mark = up.mark();
    const resp = await rawRequest(port, bytes);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(up.since(mark).length, 0, `upstream saw the refused request (${resp.status})`);
    assert.equal(resp.status, status, `status: ${resp.status} ${resp.text}`);
    return resp;
}

async function allowed(bytes) {
    const mark = up.mark();
    const resp = await rawRequest(port, bytes);
    assert.equal(resp.status, 200, `status: ${resp.status} ${resp.headers['www-authenticate'] || ''} ${resp.text}`);
    const recs = up.since(mark);
    assert.equal(recs.length, 1);
    await recs[0].complete;
    return recs[0];
}

describe('valid tokens', () => {
    test('ES256, RS256 and EdDSA tokens from mcpgate-token are accepted and not passed upstream', T(async () => {
        for (const k of [es, rs, ed]) {
            const tok = mint(k, { iss: ISS, aud: resource, scope: 'mcp:tools' });
            const rec = await allowed(post(bearer(tok)));
            assert.equal(rec.url, '/mcp');
            assert.equal(rec.headers.authorization, undefined, 'Authorization must never reach the upstream');
            assert.ok(!JSON.stringify(rec.headers).includes(tok), 'the token must not appear in any upstream header');
            assert.equal(rec.bodyText, rpc);
        }
    }));

    test('GET and DELETE need a token too, and pass with one', T(async () => {
        const tok = mint(es, { iss: ISS, aud: resource });
        for (const m of ['GET', 'DELETE']) {
            const r = await refused(req(m, '/mcp'), 401);
            assert.equal(r.headers['www-authenticate'], `Bearer ${RM()}`);
            await allowed(req(m, '/mcp', bearer(tok)));
        }
    }));

    test('the second issuer of the route is chosen by iss and its own keys', T(async () => {
        const k2 = { alg: 'ES256', kid: 'second-1', key: path.join(dir, 'second.pem') };
        await allowed(post(bearer(mint(k2, { iss: ISS2, aud: resource }))));
        // its key signing a token that claims the first issuer: the first issuer's keys are used
        await refused(post(bearer(mint(k2, { iss: ISS, aud: resource }))), 401);
        // the second issuer only allows ES256: an EdDSA key it does not have is refused anyway
        await refused(post(bearer(mint(ed, { iss: ISS2, aud: resource }))), 401);
    }));

    test('the scheme is case-insensitive; an unprotected route needs no token', T(async () => {
        const tok = mint(es, { iss: ISS, aud: resource });
        await allowed(post({ Authorization: `bEaReR ${tok}` }));
        await allowed(req('GET', '/open'));
    }));

    test('a cached token is still checked against the clock on every request', T(async () => {
        // the second issuer has no leeway: a 3 s token is accepted twice (the second time
        // from the cache), then refused once its exp has passed (exp <= the time mint() returned + 3 s;
        // 1 s proved too short for two requests on a loaded machine)
        const k2 = { alg: 'ES256', kid: 'second-1', key: path.join(dir, 'second.pem') };
        const tok = mint(k2, { iss: ISS2, aud: resource, ttl: '3s' });
        const minted = Date.now(); // after mint: exp <= minted + 3 s
        await allowed(post(bearer(tok)));
        await allowed(post(bearer(tok)));
        await new Promise((r) => setTimeout(r, Math.max(0, minted + 3200 - Date.now())));
        const r = await refused(post(bearer(tok)), 401);
        assert.equal(r.headers['www-authenticate'], `Bearer ${RM()}, error="invalid_token", error_description="The access token expired."`);
    }));
});

describe('refused tokens', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const cases = [
        ['expired beyond the leeway', () => mint(es, { iss: ISS, aud: resource, extra: { exp: now() - 120, iat: now() - 600 } }), 'The access token expired.'],
        ['not valid yet', () => mint(es, { iss: ISS, aud: resource, extra: { nbf: now() + 600 } }), 'The access token is not valid yet.'],
        ['for another resource', () => mint(es, { iss: ISS, aud: 'http://127.0.0.1:1/other' }), 'The access token was not issued for this resource.'],
        ['audience prefix only', () => mint(es, { iss: ISS, aud: resource + 'x' }), 'The access token was not issued for this resource.'],
        ['from an untrusted issuer', () => mint(es, { iss: 'https://evil.test.invalid', aud: resource }), 'The access token issuer is not trusted for this resource.'],
        ['issuer with a trailing slash', () => mint(es, { iss: ISS + '/', aud: resource }), 'The access token issuer is not trusted for this resource.'],
        ['signed by another key with the same kid', () => mint(other, { iss: ISS, aud: resource }), 'The access token signature is invalid.'],
        ['with an edited payload', () => tamper(mint(es, { iss: ISS, aud: resource, sub: 'alice' }), (c) => ({ ...c, sub: 'admin' })), 'The access token signature is invalid.'],
        ['alg none', () => algNoneToken({ iss: ISS, aud: resource, sub: 'x', exp: now() + 600 }), 'The access token signing algorithm is not accepted.'],
        ['HS256 keyed with the public key', () => hmacWithPublicKey(es, { iss: ISS, aud: resource, sub: 'x', exp: now() + 600 }), 'The access token signing algorithm is not accepted.'],
        ['typ JWT (an ID token, say)', () => mint(es, { iss: ISS, aud: resource, typ: 'JWT' }), 'The token is not an access token (typ must be at+jwt).'],
        ['a sender-constrained token', () => mint(es, { iss: ISS, aud: resource, extra: { cnf: { jkt: 'abc' } } }), 'Sender-constrained access tokens are not supported.'],
        ['exp as a string', () => mint(es, { iss: ISS, aud: resource, extra: { exp: String(now() + 600) } }), 'The access token has a claim of the wrong type or value.'],
    ];
    for (const [name, make, description] of cases) {
        test(`401 invalid_token: ${name}`, T(async () => {
            const r = await refused(post(bearer(make())), 401);
            assert.equal(r.headers['www-authenticate'], `Bearer ${RM()}, error="invalid_token", error_description="${description}"`);
            assertRpcError(r, 401, -32001, null);
        }));
    }

    test('no Authorization: 401 with a Bearer challenge naming the metadata, and no error code', T(async () => {
        const r = await refused(post(), 401);
        assert.equal(r.headers['www-authenticate'], `Bearer ${RM()}`);
        assertRpcError(r, 401, -32001, null);
    }));

    test('malformed Authorization: 400 invalid_request', T(async () => {
        const tok = mint(es, { iss: ISS, aud: resource });
        for (const h of [`Basic dXNlcjpwYXNz`, 'Bearer', 'Bearer ', `Bearer ${tok} extra`, `Bearer "${tok}"`, `Token ${tok}`]) {
            const r = await refused(post({ Authorization: h }), 400);
            assert.ok(r.headers['www-authenticate'].startsWith(`Bearer ${RM()}, error="invalid_request", error_description="`), `${h}: ${r.headers['www-authenticate']}`);
            assertRpcError(r, 400, -32600, null);
        }
        // two Authorization headers are refused by the HTTP parser already
        await refused(post({ Authorization: [`Bearer ${tok}`, `Bearer ${tok}`] }), 400);
    }));

    test('a token in the query string is never accepted', T(async () => {
        const tok = mint(es, { iss: ISS, aud: resource });
        const r = await refused(post({}, `/mcp?access_token=${tok}`), 400);
        assert.equal(r.headers['www-authenticate'], `Bearer ${RM()}, error="invalid_request", error_description="Access tokens are not accepted in the query string."`);
        assert.ok(!gw.stderr.includes(tok), 'the token must not be logged');
    }));

    test('no token value ever reaches the gateway log', T(async () => {
        const toks = [mint(es, { iss: ISS, aud: 'http://wrong/' }), mint(other, { iss: ISS, aud: resource })];
        for (const t of toks) await refused(post(bearer(t)), 401);
        for (const t of toks) {
            assert.ok(!gw.stderr.includes(t), 'token in log');
            assert.ok(!gw.stderr.includes(t.split('.')[2]), 'signature in log');
        }
    }));
});

describe('key sets and configuration', () => {
    test('rotation by reload: a token of a newly published key works, a removed key stops working', T(async () => {
        const fresh = keygen(dir, 'ES256', 'es-2');
        const oldTok = mint(es, { iss: ISS, aud: resource });
        const newTok = mint(fresh, { iss: ISS, aud: resource });
        await allowed(post(bearer(oldTok)));
        await refused(post(bearer(newTok)), 401);
        writeJwks(jwksFile, [fresh, rs, ed]);
        await gw.reload(conf(), { waitRe: /configuration reloaded/ });
        await allowed(post(bearer(newTok)));
        await refused(post(bearer(oldTok)), 401); // cached before, but its key is gone
        writeJwks(jwksFile, [es, rs, ed]);
        await gw.reload(conf(), { waitRe: /configuration reloaded/ });
        await allowed(post(bearer(oldTok)));
    }));

    test('an issuer with no usable key: 503 with Retry-After, not 401', T(async () => {
        const d = makeTempDir('mcpgate-nokeys-');
        const empty = path.join(d, 'empty.jwks.json');
        fs.writeFileSync(empty, '{"keys":[]}');
        const [p2] = await freePorts(1);
        const res2 = `http://127.0.0.1:${p2}/mcp`;
        const g2 = await startGateway({
            dir: d,
            conf: baseConfig({
                listen: p2,
                extra: `issuer ${ISS} { jwks_file ${empty}; }\nroute /mcp { upstream ${up.url('/mcp')}; resource ${res2}; issuer ${ISS}; }`,
            }),
        });
        try {
            const mark = up.mark();
            const r = await rawRequest(p2, post(bearer(mint(es, { iss: ISS, aud: res2 }))));
            assert.equal(up.since(mark).length, 0);
            assertRpcError(r, 503, -32003, null);
            assert.equal(r.headers['retry-after'], '5');
            assert.equal(r.headers['www-authenticate'], undefined, 'a 503 carries no challenge');
        } finally {
            await g2.stop();
            g2.removeDir();
        }
    }));

    test('mcpgate -t loads the key sets: an unreadable JWKS is reported with file and line', T(async () => {
        const d = makeTempDir('mcpgate-badjwks-');
        const bad = path.join(d, 'bad.jwks.json');
        fs.writeFileSync(bad, '{"keys": [ this is not json');
        const cf = path.join(d, 'mcpgate.conf');
        fs.writeFileSync(cf, `listen 127.0.0.1:1;\nissuer ${ISS} {\n    jwks_file bad.jwks.json;\n}\nroute / { upstream http://127.0.0.1:2; }\n`);
        const r = checkConfig(cf);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /mcpgate\.conf:2: cannot load jwks_file .*bad\.jwks\.json/);
        fs.writeFileSync(bad, JSON.stringify(es.jwksJson));
        const ok = checkConfig(cf);
        assert.equal(ok.code, 0, ok.stderr);
        fs.rmSync(d, { recursive: true, force: true });
    }));
});
