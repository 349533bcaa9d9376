// introspection.test.mjs -- opaque access tokens checked by RFC 7662 introspection against a real
// authorization server (oidc-provider issuing opaque tokens for the route's resource): the
// identity upstream, the per-worker cache (a second request does not reach the provider),
// revocation after the cache TTL, the audience rule, and failures (provider stopped, wrong
// gateway credentials, an endpoint that never answers) giving 503 + Retry-After, never 401.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';
import { OidcAS } from './lib/as.mjs';
import { keygen } from './lib/tokens.mjs';

const SECRET = 'mcp-introspector-secret';
const WRONG = 'not-the-secret-6f1d2a';
const TTL = 2; // s: introspection_cache_ttl in the tests

let up, dir;
const gws = [];
const T = (fn) => showLogsOnFailure(() => gws, fn);

before(async () => {
    up = await Upstream.start();
    dir = makeTempDir('mcpgate-introspect-');
});

after(async () => {
    try {
        for (const gw of gws) if (gw.running) await gw.stop();
    } finally {
        if (up) await up.stop();
    }
});

const rpc = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
const call = (port, tok) =>
    rawRequest(port, req('POST', '/mcp', { 'Content-Type': 'application/json', Authorization: `Bearer ${tok}` }, rpc));

async function waitReady(admin, ms = 10000) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
        if ((await rawRequest(admin, req('GET', '/readyz'))).status === 200) return;
        await sleep(50);
    }
    assert.fail(`/readyz not 200 within ${ms} ms`);
}

function conf({ port, admin, resource, issuerBlock, workers = 1, timeouts = {} }) {
    return baseConfig({
        listen: port,
        admin,
        workers, // the introspection cache is per worker: one, so that the counts are exact
        timeouts,
        extra: `
${issuerBlock}
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${resource};
    issuer ISSUER;
}
`,
    });
}

describe('opaque tokens introspected at oidc-provider', () => {
    let as, gw, gwBad, port, admin, badPort, badAdmin, resource, other;
    before(async () => {
        let asPort;
        [port, admin, asPort, badPort, badAdmin] = await freePorts(5);
        resource = `http://127.0.0.1:${port}/mcp`;
        other = `http://127.0.0.1:${port}/other`;
        as = await new OidcAS({ port: asPort, dir, resources: [resource, other], format: 'opaque' }).start();
        const block = (secret) => `issuer ${as.issuer} {
    allow_http on;
    introspection_client_id mcp-introspector;
    introspection_client_secret ${secret};
    introspection_cache_ttl ${TTL}s;
}`;
        gw = await startGateway({
            dir,
            confName: 'intro.conf',
            conf: conf({ port, admin, resource, issuerBlock: block(SECRET) }).replace('ISSUER', as.issuer),
        });
        gws.push(gw);
        // the same, with wrong client credentials for the introspection endpoint
        gwBad = await startGateway({
            dir,
            confName: 'intro-bad.conf',
            conf: conf({ port: badPort, admin: badAdmin, resource: `http://127.0.0.1:${port}/mcp`, issuerBlock: block(WRONG) })
                .replace('ISSUER', as.issuer),
        });
        gws.push(gwBad);
        await waitReady(admin);
        await waitReady(badAdmin);
    });
    after(async () => {
        try {
            if (gw?.running) await gw.stop();
            if (gwBad?.running) await gwBad.stop();
        } finally {
            if (as) await as.stop();
        }
    });

    test('an opaque client_credentials token is accepted; the upstream gets the identity', T(async () => {
        const t = await as.token({ resource });
        assert.equal(t.status, 200, JSON.stringify(t.json));
        const tok = t.json.access_token;
        assert.notEqual(tok.split('.').length, 3, 'the provider must issue an opaque token here');
        const n0 = await as.introspections();
        const mark = up.mark();
        const r = await call(port, tok);
        assert.equal(r.status, 200, `${r.status} ${r.headers['www-authenticate'] || ''} ${r.text}`);
        assert.equal(await as.introspections(), n0 + 1);
        const got = up.since(mark);
        assert.equal(got.length, 1);
        // a client_credentials token has no resource owner: the subject is the client
        assert.equal(got[0].headers['x-mcp-subject'], 'mcp-cc');
        assert.equal(got[0].headers['x-mcp-client-id'], 'mcp-cc');
        assert.equal(got[0].headers['x-mcp-issuer'], as.issuer);
        assert.equal(got[0].headers.authorization, undefined, 'the token is not passed upstream');

        // the second request is answered from the cache: the provider is not asked again
        const r2 = await call(port, tok);
        assert.equal(r2.status, 200);
        assert.equal(await as.introspections(), n0 + 1, 'a cached result must not reach the provider');
    }));

    test('concurrent requests with one new token cause one introspection', T(async () => {
        const t = await as.token({ resource });
        const n0 = await as.introspections();
        const res = await Promise.all(Array.from({ length: 8 }, () => call(port, t.json.access_token)));
        assert.deepEqual(res.map((r) => r.status), Array(8).fill(200));
        // identical tokens in flight share one request
        assert.equal((await as.introspections()) - n0, 1);
    }));

    test('a token for another resource is refused with 401 invalid_token', T(async () => {
        const t = await as.token({ resource: other });
        assert.equal(t.status, 200, JSON.stringify(t.json));
        const r = await call(port, t.json.access_token);
        assert.equal(r.status, 401);
        assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
        assert.ok(await gw.waitStderr(/access token refused on \/mcp: aud_mismatch/), 'aud_mismatch logged');
    }));

    test('an unknown token is refused with 401 (inactive)', T(async () => {
        const r = await call(port, 'bm90LWEtdG9rZW4tYXQtYWxsLTEyMzQ1Njc4OTA');
        assert.equal(r.status, 401);
        assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
        assert.ok(await gw.waitStderr(/access token refused on \/mcp: inactive/), 'inactive logged');
    }));

    test('a revoked token is refused once the cache TTL has passed', T(async () => {
        const t = await as.token({ resource });
        const tok = t.json.access_token;
        assert.equal((await call(port, tok)).status, 200);
        assert.equal(await as.revoke(tok), 200);
        await sleep(TTL * 1000 + 500);
        const r = await call(port, tok);
        assert.equal(r.status, 401, r.text);
        assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
    }));

    test('wrong introspection credentials: 503 with Retry-After, an error logged without the secret', T(async () => {
        const t = await as.token({ resource });
        const r = await call(badPort, t.json.access_token);
        assert.equal(r.status, 503, r.text);
        assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
        assert.equal(r.headers['www-authenticate'], undefined);
        assert.ok(await gwBad.waitStderr(/token introspection failed: HTTP status 401/), 'failure logged');
        assert.ok(!gwBad.stderr.includes(WRONG), 'the client secret must not be logged');
        assert.ok(!gw.stderr.includes(SECRET), 'the client secret must not be logged');
    }));

    test('provider stopped: 503 with Retry-After, never 401', T(async () => {
        const t = await as.token({ resource });
        await as.stop();
        as = null;
        const r = await call(port, t.json.access_token);
        assert.equal(r.status, 503, r.text);
        assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
        assert.equal(r.headers['www-authenticate'], undefined);
    }));
});

describe('an introspection endpoint that never answers', () => {
    let hang, held, gw, port, admin;
    before(async () => {
        [port, admin] = await freePorts(2);
        held = [];
        hang = http.createServer((rq, rs) => held.push(rs)); // never answers
        await new Promise((r) => hang.listen(0, '127.0.0.1', r));
        const iss = 'https://opaque.test.invalid';
        const k = keygen(dir, 'ES256', 'hang-key');
        gw = await startGateway({
            dir,
            confName: 'hang.conf',
            conf: conf({
                port, admin, resource: `http://127.0.0.1:${port}/mcp`, workers: 2,
                timeouts: { client_timeout: '3s' },
                issuerBlock: `issuer ${iss} {
    jwks_file ${k.jwks};
    allow_http on;
    validation introspection;
    introspection_endpoint http://127.0.0.1:${hang.address().port}/introspect;
    introspection_client_id gw;
    introspection_client_secret \${NO_SUCH_VAR:-s3cret};
}`,
            }).replace('ISSUER', iss),
        });
        gws.push(gw);
    });
    after(async () => {
        try {
            if (gw?.running) await gw.stop();
        } finally {
            for (const rs of held) rs.destroy();
            hang?.closeAllConnections?.();
            await new Promise((r) => hang.close(r));
        }
    });

    test('a client that hangs up while its token is introspected: nothing breaks', T(async () => {
        for (let i = 0; i < 5; i++) {
            const s = net.connect(port, '127.0.0.1');
            await new Promise((r) => s.once('connect', r));
            s.write(`POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer opaque-${i}\r\nContent-Type: application/json\r\nContent-Length: ${rpc.length}\r\n\r\n${rpc}`);
            await sleep(100);
            s.destroy();
        }
        await sleep(200);
        assert.ok(held.length >= 1, 'the endpoint was asked');
    }));

    test('no answer within client_timeout: 503 with Retry-After', T(async () => {
        const t0 = Date.now();
        const r = await call(port, 'still-opaque-token');
        assert.equal(r.status, 503, r.text);
        assert.ok(Number(r.headers['retry-after']) >= 1);
        assert.equal(r.headers['www-authenticate'], undefined);
        assert.ok(Date.now() - t0 < 15000);
        assert.ok(Date.now() - t0 >= 2500, 'answered before client_timeout');
    }));
});
