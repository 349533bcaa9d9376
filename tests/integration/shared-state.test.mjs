// shared-state.test.mjs -- revocation by jti in Redis (`revocation on;`, docs/redis.md) and the
// introspection result cache shared through Redis (docs/keys.md), against a real redis-server
// and oidc-provider: a revoked jti is refused at once by every process, other tokens pass, each
// on_failure policy with Redis stopped; a second gateway process sharing the Redis does not
// introspect a token the first one already did; the counters for both in /metrics.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { keygen, mint } from './lib/tokens.mjs';
import { Redis } from './lib/redis.mjs';
import { OidcAS } from './lib/as.mjs';
import { sleep } from './lib/procs.mjs';

const ISS = 'https://issuer.revoke.test.invalid';
const OTHER = 'https://other.revoke.test.invalid';
let dir, up, redis, key, other;
const gws = [];
const T = (fn) => showLogsOnFailure(() => gws, fn);

before(async () => {
    dir = makeTempDir('mcpgate-shared-');
    up = await Upstream.start();
    redis = await Redis.start();
    key = keygen(dir, 'ES256', 'rev-key');
    other = keygen(dir, 'ES256', 'other-key');
});

after(async () => {
    try {
        for (const gw of gws) if (gw.running) await gw.stop();
    } finally {
        if (redis) await redis.stop();
        if (up) await up.stop();
    }
});

const rpc = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
const call = (port, tok) =>
    rawRequest(port, req('POST', '/mcp', { 'Content-Type': 'application/json', Authorization: `Bearer ${tok}` }, rpc));

/* Prometheus text -> Map(name{labels} -> value). */
async function metrics(admin) {
    const r = await rawRequest(admin, req('GET', '/metrics'));
    assert.equal(r.status, 200);
    const out = new Map();
    for (const line of r.text.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        out.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return out;
}
const m = (map, k) => map.get(k) || 0;

async function waitReady(admin, ms = 10000) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
        if ((await rawRequest(admin, req('GET', '/readyz'))).status === 200) return;
        await sleep(50);
    }
    assert.fail(`/readyz not 200 within ${ms} ms`);
}

describe('revocation on: jti in mg:revoked:<issuer>', () => {
    const gw = {};
    async function start(name, policy) {
        const [port, admin] = await freePorts(2);
        const resource = `https://mcp.revoke.test.invalid/mcp`;
        const g = await startGateway({
            dir: makeTempDir(`mcpgate-rev-${name}-`),
            conf: baseConfig({
                listen: port,
                admin,
                extra: `
redis 127.0.0.1:${redis.port} { timeout 100ms; on_failure ${policy}; }
issuer ${ISS} { jwks_file ${key.jwks}; revocation on; }
issuer ${OTHER} { jwks_file ${other.jwks}; }
route /mcp { upstream ${up.url('/mcp')}; resource ${resource}; issuer ${ISS}; issuer ${OTHER}; }
`,
            }),
        });
        gws.push(g);
        Object.assign(g, { port, admin, resource });
        gw[name] = g;
        return g;
    }
    before(async () => {
        await start('deny', 'deny');
        await start('allow', 'local');
        await sleep(300); // both connected to Redis
    });

    test('a revoked jti is refused at once by every process; other tokens pass', T(async () => {
        const jti = `jti-${process.pid}-${Date.now()}`;
        const tok = mint(key, { iss: ISS, aud: gw.deny.resource, extra: { jti } });
        const keep = mint(key, { iss: ISS, aud: gw.deny.resource, extra: { jti: `${jti}-kept` } });
        assert.equal((await call(gw.deny.port, tok)).status, 200);
        assert.equal((await call(gw.allow.port, tok)).status, 200);
        const before = await metrics(gw.deny.admin);
        assert.equal(redis.cli('SADD', `mg:revoked:${ISS}`, jti), '1');
        for (const g of [gw.deny, gw.allow]) {
            const r = await call(g.port, tok);
            assert.equal(r.status, 401, r.text);
            assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
            assert.match(r.headers['www-authenticate'], /revoked/);
            assert.equal((await call(g.port, keep)).status, 200, 'another jti passes');
        }
        // the other issuer does not ask: even the same jti passes there
        assert.equal((await call(gw.deny.port, mint(other, { iss: OTHER, aud: gw.deny.resource, extra: { jti } }))).status, 200);
        assert.ok(await gw.deny.waitStderr(/access token refused on \/mcp: revoked/), 'revocation logged');
        const after = await metrics(gw.deny.admin);
        assert.equal(m(after, 'mcpgate_revocation_checks_total{result="revoked"}') -
            m(before, 'mcpgate_revocation_checks_total{result="revoked"}'), 1);
        assert.ok(m(after, 'mcpgate_revocation_checks_total{result="not_revoked"}') >= 2);
        assert.ok(m(after, 'mcpgate_auth_decisions_total{route="/mcp",decision="deny",reason="revoked"}') >= 1);
        // taken out of the set: accepted again
        redis.cli('SREM', `mg:revoked:${ISS}`, jti);
        assert.equal((await call(gw.deny.port, tok)).status, 200);
    }));

    test('Redis stopped: on_failure deny answers 503, local lets the token through', T(async () => {
        const tok = mint(key, { iss: ISS, aud: gw.deny.resource });
        await redis.stop();
        try {
            const t0 = Date.now();
            const d = await call(gw.deny.port, tok);
            assert.equal(d.status, 503, d.text);
            assert.ok(Number(d.headers['retry-after']) >= 1);
            assert.ok(Date.now() - t0 < 2000, 'bounded by the redis timeout');
            const a = await call(gw.allow.port, tok);
            assert.equal(a.status, 200, a.text);
            assert.ok(await gw.allow.waitStderr(/revocation check failed/), 'the fallback is logged');
            const md = await metrics(gw.deny.admin), ma = await metrics(gw.allow.admin);
            assert.ok(m(md, 'mcpgate_revocation_checks_total{result="unavailable_denied"}') >= 1);
            assert.ok(m(ma, 'mcpgate_revocation_checks_total{result="unavailable_allowed"}') >= 1);
        } finally {
            await redis.start();
        }
        // reconnected (backoff up to a few seconds): checks come from Redis again
        const until = Date.now() + 10000;
        let s;
        while (Date.now() < until && (s = (await call(gw.deny.port, tok)).status) !== 200) await sleep(200);
        assert.equal(s, 200);
    }));
});

describe('introspection results shared through Redis', () => {
    let as, gA, gB, resource;
    before(async () => {
        const [pA, aA, pB, aB, asPort] = await freePorts(5);
        resource = `http://127.0.0.1:${pA}/mcp`;
        as = await new OidcAS({ port: asPort, dir, resources: [resource], format: 'opaque' }).start();
        const conf = (port, admin) => baseConfig({
            listen: port,
            admin,
            workers: 1,
            extra: `
allow_loose_key_permissions on; # the secret is in the test's config file
redis 127.0.0.1:${redis.port} { timeout 200ms; }
issuer ${as.issuer} {
    allow_http on;
    introspection_client_id mcp-introspector;
    introspection_client_secret mcp-introspector-secret;
    introspection_cache_ttl 30s;
}
route /mcp { upstream ${up.url('/mcp')}; resource ${resource}; issuer ${as.issuer}; }
`,
        });
        gA = await startGateway({ dir: makeTempDir('mcpgate-intro-a-'), conf: conf(pA, aA) });
        gws.push(gA);
        gB = await startGateway({ dir: makeTempDir('mcpgate-intro-b-'), conf: conf(pB, aB) });
        gws.push(gB);
        Object.assign(gA, { port: pA, admin: aA });
        Object.assign(gB, { port: pB, admin: aB });
        await waitReady(aA);
        await waitReady(aB);
        await sleep(300);
    });
    after(async () => {
        try {
            for (const g of [gA, gB]) if (g?.running) await g.stop();
        } finally {
            if (as) await as.stop();
        }
    });

    test('a second process reuses the first one\'s result; the token is not stored', T(async () => {
        const t = await as.token({ resource });
        assert.equal(t.status, 200, JSON.stringify(t.json));
        const tok = t.json.access_token;
        const n0 = await as.introspections();
        const mA0 = await metrics(gA.admin), mB0 = await metrics(gB.admin);
        assert.equal((await call(gA.port, tok)).status, 200);
        assert.equal(await as.introspections(), n0 + 1);
        await sleep(100); // the SET is fire-and-forget
        const mark = up.mark();
        const r = await call(gB.port, tok);
        assert.equal(r.status, 200, r.text);
        // the identity read back from Redis is the one the provider gave
        const got = up.since(mark);
        assert.equal(got.length, 1);
        assert.equal(got[0].headers['x-mcp-subject'], 'mcp-cc');
        assert.equal(got[0].headers['x-mcp-client-id'], 'mcp-cc');
        assert.equal(got[0].headers['x-mcp-issuer'], as.issuer);
        assert.equal(await as.introspections(), n0 + 1, 'the second process must not introspect again');
        // what Redis holds: a hash-named key with a TTL, never the token
        const keys = redis.keys('mg:introspect:*');
        assert.ok(keys.length >= 1);
        for (const k of keys) {
            assert.match(k, /^mg:introspect:[0-9a-f]{64}$/);
            const v = redis.cli('GET', k);
            assert.ok(!v.includes(tok), 'the token itself must not be stored');
            const ttl = Number(redis.cli('PTTL', k));
            assert.ok(ttl > 0 && ttl <= 30000, `PTTL ${ttl}`);
        }
        const mA = await metrics(gA.admin), mB = await metrics(gB.admin);
        const d = (a, b, k) => m(a, k) - m(b, k);
        assert.equal(d(mA, mA0, `mcpgate_introspection_requests_total{issuer="${as.issuer}",result="active"}`), 1);
        assert.equal(d(mA, mA0, 'mcpgate_introspection_cache_misses_total{store="memory"}'), 1);
        assert.equal(d(mA, mA0, 'mcpgate_introspection_cache_misses_total{store="redis"}'), 1);
        assert.equal(d(mB, mB0, 'mcpgate_introspection_cache_hits_total{store="redis"}'), 1);
        assert.equal(d(mB, mB0, `mcpgate_introspection_requests_total{issuer="${as.issuer}",result="active"}`), 0);
        // and B's own memory now has it
        assert.equal((await call(gB.port, tok)).status, 200);
        assert.equal(d(await metrics(gB.admin), mB0, 'mcpgate_introspection_cache_hits_total{store="memory"}'), 1);
    }));

    test('an inactive token is shared too (briefly)', T(async () => {
        const bogus = `bm90LWEtdG9rZW4t${Date.now()}`;
        const n0 = await as.introspections();
        assert.equal((await call(gA.port, bogus)).status, 401);
        await sleep(100);
        const r = await call(gB.port, bogus);
        assert.equal(r.status, 401);
        assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
        assert.equal(await as.introspections(), n0 + 1);
        const mA = await metrics(gA.admin);
        assert.ok(m(mA, `mcpgate_introspection_requests_total{issuer="${as.issuer}",result="inactive"}`) >= 1);
    }));
});
