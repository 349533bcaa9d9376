// observability.test.mjs -- what an operator sees: /metrics in Prometheus text whose counters
// move with allowed and refused requests, the JSON audit log (fields, no token anywhere, reopened
// on SIGUSR1, a rate-limited call), request ids that cross the gateway, and the client address
// (trusted_proxy: X-Forwarded-For/Forwarded believed from a trusted peer only).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { keygen, writeJwks, mint } from './lib/tokens.mjs';

const ISS = 'https://issuer.obs.invalid';
let gw, up, port, admin, dir, resource, rlResource, key, auditFile, goodConf;
const T = (fn) => showLogsOnFailure(() => gw, fn);

before(async () => {
    up = await Upstream.start();
    [port, admin] = await freePorts(2);
    dir = makeTempDir('mcpgate-obs-');
    resource = `http://127.0.0.1:${port}/mcp`;
    rlResource = `http://127.0.0.1:${port}/rl`;
    key = keygen(dir, 'ES256', 'obs-1');
    const jwks = writeJwks(path.join(dir, 'jwks.json'), [key]);
    auditFile = path.join(dir, 'audit.log');
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: port,
            admin,
            routes: [['/open', up.url('/open')]],
            extra: `access_log ${auditFile};
issuer ${ISS} { jwks_file ${jwks}; }
route /mcp { upstream ${up.url('/mcp')}; resource ${resource}; issuer ${ISS}; }
route /rl { upstream ${up.url('/rl')}; resource ${rlResource}; issuer ${ISS}; rate_limit subject 1/minute; }
route /addr { upstream ${up.url('/addr')}; rate_limit subject 1/minute; }`,
        }),
    });
    goodConf = fs.readFileSync(gw.confPath, 'utf8');
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

function get(p, port_ = admin) {
    return new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: port_, path: p, timeout: 5000 }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        }).on('error', reject);
    });
}

/* Prometheus text format 0.0.4: every sample line is `name{labels} value`; returns a map from
 * `name{labels}` (labels sorted as written) to the number, failing on any malformed line. */
function parseProm(text) {
    const out = new Map();
    for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line);
        assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
        out.set(m[1] + (m[2] || ''), Number(m[3]));
    }
    return out;
}

const sample = (map, key) => map.get(key) || 0;
const rpc = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
const post = (headers = {}) => req('POST', '/mcp', { 'Content-Type': 'application/json', ...headers }, rpc);

function auditLines() {
    if (!fs.existsSync(auditFile)) return [];
    return fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function waitAudit(pred, ms = 3000) {
    const end = Date.now() + ms;
    for (;;) {
        const hit = auditLines().find(pred);
        if (hit) return hit;
        if (Date.now() > end) assert.fail('audit line not found');
        await new Promise((r) => setTimeout(r, 50));
    }
}

describe('metrics', () => {
    test('/metrics is Prometheus text and its counters move with allowed and refused requests', T(async () => {
        const before = parseProm((await get('/metrics')).body);
        const tok = mint(key, { iss: ISS, aud: resource });
        assert.equal((await rawRequest(port, post({ Authorization: `Bearer ${tok}` }))).status, 200);
        assert.equal((await rawRequest(port, post())).status, 401);
        assert.equal((await rawRequest(port, post({ Authorization: 'Bearer abc' }))).status, 401);
        assert.equal((await rawRequest(port, req('GET', '/nowhere'))).status, 404);
        const r = await get('/metrics');
        assert.equal(r.status, 200);
        assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
        const after_ = parseProm(r.body);
        const d = (k) => sample(after_, k) - sample(before, k);
        assert.equal(d('mcpgate_requests_total{route="/mcp",method="POST",status="200"}'), 1);
        assert.equal(d('mcpgate_requests_total{route="/mcp",method="POST",status="401"}'), 2);
        assert.equal(d('mcpgate_requests_total{route="none",method="GET",status="404"}'), 1);
        assert.equal(d('mcpgate_auth_decisions_total{route="/mcp",decision="allow",reason="ok"}'), 1);
        assert.equal(d('mcpgate_auth_decisions_total{route="/mcp",decision="deny",reason="no_token"}'), 1);
        assert.equal(d('mcpgate_auth_decisions_total{route="/mcp",decision="deny",reason="malformed"}'), 1);
        assert.equal(d('mcpgate_upstream_duration_seconds_count{route="/mcp"}'), 1);
        assert.equal(sample(after_, 'mcpgate_build_info{version="0.1.0"}'), 1);
        // the same token again: served from the worker's verified-token cache
        const misses = d('mcpgate_token_cache_misses_total');
        assert.ok(misses >= 1, 'the first use of a token is a cache miss');
        for (let i = 0; i < 4; i++) assert.equal((await rawRequest(port, post({ Authorization: `Bearer ${tok}` }))).status, 200);
        const again = parseProm((await get('/metrics')).body);
        assert.ok(sample(again, 'mcpgate_token_cache_hits_total') - sample(after_, 'mcpgate_token_cache_hits_total') >= 2,
            'repeated uses of a token hit the cache (2 workers: at least 2 of 4)');
        assert.ok(after_.has('mcpgate_connections_open'));
    }));

    test('a refused reload is counted, a good one too', T(async () => {
        const b = parseProm((await get('/metrics')).body);
        const good = fs.readFileSync(gw.confPath, 'utf8');
        await gw.reload(good + '\nbogus_directive;\n', { waitRe: /reload failed/ });
        await gw.reload(good, { waitRe: /configuration reloaded/ });
        const a = parseProm((await get('/metrics')).body);
        assert.equal(sample(a, 'mcpgate_config_reloads_total{result="failure"}') - sample(b, 'mcpgate_config_reloads_total{result="failure"}'), 1);
        assert.equal(sample(a, 'mcpgate_config_reloads_total{result="success"}') - sample(b, 'mcpgate_config_reloads_total{result="success"}'), 1);
    }));
});

describe('audit log', () => {
    test('an allowed and a refused call, with the fields, and no token anywhere in any log', T(async () => {
        const tok = mint(key, { iss: ISS, aud: resource, sub: 'alice', clientId: 'client-7' });
        const bad = mint(key, { iss: ISS, aud: 'http://elsewhere/' });
        const ok = await rawRequest(port, post({ Authorization: `Bearer ${tok}`, 'X-Request-Id': 'audit-ok-1' }));
        assert.equal(ok.status, 200);
        const no = await rawRequest(port, post({ Authorization: `Bearer ${bad}`, 'X-Request-Id': 'audit-no-1' }));
        assert.equal(no.status, 401);
        const a = await waitAudit((l) => l.request_id === 'audit-ok-1');
        assert.deepEqual(Object.keys(a).sort(), ['bytes_in', 'bytes_out', 'client', 'client_id', 'decision', 'duration_ms',
            'iss', 'method', 'reason', 'request_id', 'route', 'rpc_method', 'status', 'sub', 'target', 'time', 'upstream_ms'].sort());
        assert.equal(a.decision, 'allow');
        assert.equal(a.status, 200);
        assert.equal(a.route, '/mcp');
        assert.equal(a.method, 'POST');
        assert.equal(a.client, '127.0.0.1');
        assert.equal(a.iss, ISS);
        assert.equal(a.sub, 'alice');
        assert.equal(a.client_id, 'client-7');
        assert.equal(a.rpc_method, 'tools/list');
        assert.equal(a.target, null);
        assert.ok(a.bytes_in > rpc.length && a.bytes_out > 0);
        assert.equal(typeof a.upstream_ms, 'number');
        assert.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        const d = await waitAudit((l) => l.request_id === 'audit-no-1');
        assert.equal(d.decision, 'deny');
        assert.equal(d.reason, 'aud_mismatch');
        assert.equal(d.status, 401);
        assert.equal(d.upstream_ms, null);
        const everything = fs.readFileSync(auditFile, 'utf8') + gw.stderr + (gw.stdoutBuf || '');
        for (const t of [tok, bad]) {
            assert.ok(!everything.includes(t), 'a token appears in a log');
            assert.ok(!everything.includes(t.split('.')[2]), 'a token signature appears in a log');
        }
    }));

    test('SIGUSR1 reopens the log file after rotation', T(async () => {
        await rawRequest(port, req('GET', '/open', { 'X-Request-Id': 'before-rotate' }));
        await waitAudit((l) => l.request_id === 'before-rotate');
        const rotated = auditFile + '.1';
        fs.renameSync(auditFile, rotated);
        process.kill(gw.pid, 'SIGUSR1');
        const end = Date.now() + 3000;
        while (!/access log reopened/.test(gw.stderr) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        assert.match(gw.stderr, /access log reopened/);
        await rawRequest(port, req('GET', '/open', { 'X-Request-Id': 'after-rotate' }));
        await waitAudit((l) => l.request_id === 'after-rotate');
        assert.ok(!fs.readFileSync(rotated, 'utf8').includes('after-rotate'));
        assert.ok(fs.readFileSync(rotated, 'utf8').includes('before-rotate'));
    }));
});

describe('audit log: rate limits', () => {
    test('a rate-limited call is audited: deny, rate_limited, 429, with iss and sub', T(async () => {
        const sub = `rl-${process.pid}`;
        const tok = mint(key, { iss: ISS, aud: rlResource, sub, clientId: 'client-rl' });
        const call = (rid) => rawRequest(port, req('POST', '/rl', {
            'Content-Type': 'application/json', Authorization: `Bearer ${tok}`, 'X-Request-Id': rid }, rpc));
        assert.equal((await call('rl-first')).status, 200);
        assert.equal((await call('rl-second')).status, 429);
        const a = await waitAudit((l) => l.request_id === 'rl-first');
        assert.equal(a.decision, 'allow');
        assert.equal(a.status, 200);
        const d = await waitAudit((l) => l.request_id === 'rl-second');
        assert.equal(d.decision, 'deny');
        assert.equal(d.reason, 'rate_limited');
        assert.equal(d.status, 429);
        assert.equal(d.route, '/rl');
        assert.equal(d.iss, ISS);
        assert.equal(d.sub, sub);
        assert.equal(d.client_id, 'client-rl');
        assert.equal(d.rpc_method, 'tools/list');
        assert.equal(d.upstream_ms, null, 'a rate-limited call never reaches the upstream');
    }));
});

describe('client address (trusted_proxy)', () => {
    const open = (rid, headers = {}) => rawRequest(port, req('GET', '/open', { 'X-Request-Id': rid, ...headers }));

    test('from a peer that is not a trusted_proxy, X-Forwarded-For and Forwarded are ignored', T(async () => {
        const mark = up.mark();
        const r = await open('xff-untrusted', { 'X-Forwarded-For': '203.0.113.9', Forwarded: 'for=198.51.100.4' });
        assert.equal(r.status, 200);
        const a = await waitAudit((l) => l.request_id === 'xff-untrusted');
        assert.equal(a.client, '127.0.0.1', 'a forged X-Forwarded-For is not believed');
        const seen = up.since(mark)[0].headers;
        assert.equal(seen['x-forwarded-for'], '127.0.0.1', 'the forged chain is replaced, not passed on');
        assert.equal(seen.forwarded, undefined);
    }));

    test('from a trusted_proxy, the last untrusted address of X-Forwarded-For (or Forwarded) is the client', T(async () => {
        await gw.reload(goodConf + '\ntrusted_proxy 127.0.0.1 10.0.0.0/8;\n', { waitRe: /configuration reloaded/ });
        try {
            // A worker takes the new configuration with its next request: retry until it shows.
            let a, mark, n = 0;
            for (const end = Date.now() + 5000; ; ) {
                mark = up.mark();
                const rid = `xff-trusted-${++n}`;
                assert.equal((await open(rid, { 'X-Forwarded-For': '192.0.2.1, 203.0.113.9, 10.1.2.3' })).status, 200);
                a = await waitAudit((l) => l.request_id === rid);
                if (a.client !== '127.0.0.1' || Date.now() > end) break;
                await new Promise((r) => setTimeout(r, 100));
            }
            // 10.1.2.3 is a trusted hop; 192.0.2.1 is what 203.0.113.9 claims, not believed.
            assert.equal(a.client, '203.0.113.9');
            const seen = up.since(mark)[0].headers;
            assert.equal(seen['x-forwarded-for'], '203.0.113.9', 'the upstream gets the resolved client only');
            assert.equal(seen.forwarded, undefined);
            // Forwarded (RFC 7239) when there is no X-Forwarded-For; both workers agree.
            for (let i = 0; i < 4; i++) {
                const rid = `fwd-trusted-${i}`;
                await open(rid, { Forwarded: 'for="[2001:db8::7]:4711";proto=https, for=10.0.0.2' });
                assert.equal((await waitAudit((l) => l.request_id === rid)).client, '2001:db8::7');
            }
            // A node that is not an address ends the walk at the hop that reported it.
            await open('xff-garbage', { 'X-Forwarded-For': '203.0.113.9, not-an-ip' });
            assert.equal((await waitAudit((l) => l.request_id === 'xff-garbage')).client, '127.0.0.1');
            // No header: the peer.
            await open('xff-none');
            assert.equal((await waitAudit((l) => l.request_id === 'xff-none')).client, '127.0.0.1');
            // The address-keyed limits of a route without an issuer count each resolved client.
            const addr = (ip) => rawRequest(port, req('GET', '/addr', { 'X-Forwarded-For': ip })).then((r) => r.status);
            assert.deepEqual([await addr('203.0.113.50'), await addr('203.0.113.50'), await addr('203.0.113.51')],
                [200, 429, 200]);
        } finally {
            await gw.reload(goodConf, { waitRe: /configuration reloaded/ });
        }
    }));
});

describe('request ids', () => {
    test('a safe X-Request-Id is kept end to end; an unsafe one is replaced', T(async () => {
        const mark = up.mark();
        const r = await rawRequest(port, req('GET', '/open', { 'X-Request-Id': 'trace-42.a:b' }));
        assert.equal(r.headers['x-request-id'], 'trace-42.a:b');
        assert.equal(up.since(mark)[0].headers['x-request-id'], 'trace-42.a:b');
        const m2 = up.mark();
        const r2 = await rawRequest(port, req('GET', '/open', { 'X-Request-Id': 'has space<script>' }));
        assert.match(r2.headers['x-request-id'], /^[0-9a-f]{32}$/);
        assert.equal(up.since(m2)[0].headers['x-request-id'], r2.headers['x-request-id']);
        const r3 = await rawRequest(port, req('GET', '/open'));
        assert.match(r3.headers['x-request-id'], /^[0-9a-f]{32}$/);
        assert.notEqual(r3.headers['x-request-id'], r2.headers['x-request-id']);
    }));

    test('error replies carry the request id in the header and in error.data', T(async () => {
        const r = await rawRequest(port, req('GET', '/nowhere', { 'X-Request-Id': 'err-1' }));
        assert.equal(r.status, 404);
        assert.equal(r.headers['x-request-id'], 'err-1');
        assert.equal(JSON.parse(r.text).error.data.request_id, 'err-1');
    }));
});
