// ratelimit.test.mjs -- rate limits and shared state (docs/redis.md) against a real
// redis-server started and stopped by the test: exact per-subject, per-tool, per-client and
// per-route limits; the 429 headers; two gateway processes sharing one Redis enforcing one
// global limit; all-or-nothing buckets; each on_failure policy with Redis stopped or hung, each
// request bounded by the timeout; recovery after a restart and after SCRIPT FLUSH; session
// bindings enforced across processes; the in-process limiter when no redis block is configured.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream, json } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { assertRpcError } from './lib/assert.mjs';
import { keygen, writeJwks, mint } from './lib/tokens.mjs';
import { Redis } from './lib/redis.mjs';
import { sleep } from './lib/procs.mjs';

const ISS = 'https://issuer.rl.test.invalid';
const RES = (p) => `https://mcp.rl.test.invalid${p}`;
const RL_CODE = -32006; /* reply.c: rate limited */
let dir, key, jwks, up, redis;
const gws = {};
const T = (fn) => showLogsOnFailure(() => Object.values(gws), fn);

/* Every gateway gets the same routes; <redisBlock> decides where the limits live. */
function conf(port, redisBlock = '', admin = undefined) {
    const prot = (p, limits) =>
        `route ${p} { upstream ${up.url(p)}; resource ${RES(p)}; issuer ${ISS}; ${limits} }`;
    return baseConfig({
        listen: port,
        admin,
        extra: `
${redisBlock}
issuer ${ISS} { jwks_file ${jwks}; }
${prot('/subj', 'rate_limit subject 3/minute;')}
${prot('/tool', 'rate_limit tool:echo* 2/minute;')}
${prot('/client', 'rate_limit client 3/minute;')}
${prot('/mixed', 'rate_limit subject 2/minute; rate_limit tool:echo 1/minute;')}
${prot('/global', 'rate_limit subject 4/minute burst 4;')}
${prot('/sess', '')}
route /open { upstream ${up.url('/open')}; rate_limit route 3/minute; }
`,
    });
}

const redisBlock = (r, policy = 'local', timeout = '50ms') =>
    `redis 127.0.0.1:${r.port} { timeout ${timeout}; on_failure ${policy}; }`;

async function gateway(name, redisBlockText) {
    const [port, admin] = await freePorts(2);
    gws[name] = await startGateway({ dir: makeTempDir(`mcpgate-rl-${name}-`), conf: conf(port, redisBlockText, admin) });
    gws[name].port = port;
    gws[name].admin = admin;
    return gws[name];
}

let seq = 0;
/* A fresh subject each time, so that tests never share buckets by accident. */
function token(route, { sub = `user-${process.pid}-${++seq}`, clientId } = {}) {
    return mint(key, { iss: ISS, aud: RES(route), sub, clientId });
}

let rpcId = 0;
function call(gw, route, tok, { method = 'tools/call', tool = 'echo', headers = {} } = {}) {
    const id = ++rpcId;
    const msg = { jsonrpc: '2.0', id, method };
    if (method === 'tools/call') msg.params = { name: tool, arguments: {} };
    const h = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers };
    if (tok) h.Authorization = `Bearer ${tok}`;
    return rawRequest(gw.port, req('POST', route, h, JSON.stringify(msg))).then((r) => ((r.rpcId = id), r));
}

/* <n> requests; returns the statuses in order. */
async function statuses(n, fn) {
    const out = [];
    for (let i = 0; i < n; i++) out.push((await fn(i)).status);
    return out;
}
const count = (arr, s) => arr.filter((x) => x === s).length;

/* The value of one series on the gateway's /metrics (0 when absent). */
async function metric(gw, series) {
    const r = await rawRequest(gw.admin, req('GET', '/metrics'));
    const line = r.text.split('\n').find((l) => l.startsWith(series + ' '));
    return line ? Number(line.split(' ').pop()) : 0;
}

before(async () => {
    dir = makeTempDir('mcpgate-rl-keys-');
    key = keygen(dir, 'ES256', 'rl-1');
    jwks = writeJwks(path.join(dir, 'jwks.json'), [key]);
    up = await Upstream.start();
    let n = 0;
    up.route('/sess', (rq, res, rec) => {
        const body = JSON.parse(rec.body.toString() || '{}');
        if (body.method === 'initialize') {
            return json(200, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-03-26', capabilities: {}, serverInfo: { name: 'x', version: '0' } } },
                { 'Mcp-Session-Id': `sess-${process.pid}-${++n}` })(rq, res);
        }
        return json(200, { jsonrpc: '2.0', id: body.id, result: {} })(rq, res);
    });
    redis = await Redis.start();
});

after(async () => {
    try {
        for (const gw of Object.values(gws)) await gw.stop();
    } finally {
        await redis?.stop();
        await up?.stop();
        for (const gw of Object.values(gws)) gw.removeDir();
    }
});

/* The limits every mode must enforce exactly (the in-process limiter and Redis). */
function exactLimits(name) {
    const gw = () => gws[name];

    test(`${name}: a per-subject limit of 3/minute admits exactly 3 of 6`, T(async () => {
        const tok = token('/subj');
        const mark = up.mark();
        const st = await statuses(6, () => call(gw(), '/subj', tok));
        assert.deepEqual(st, [200, 200, 200, 429, 429, 429]);
        assert.equal(up.since(mark).length, 3, 'refused requests are not forwarded');
        // another subject has its own bucket
        assert.equal((await call(gw(), '/subj', token('/subj'))).status, 200);
    }));

    test(`${name}: the 429 carries Retry-After, RateLimit-Policy, RateLimit and a JSON-RPC error`, T(async () => {
        const tok = token('/subj');
        for (let i = 0; i < 3; i++) assert.equal((await call(gw(), '/subj', tok)).status, 200);
        const r = await call(gw(), '/subj', tok);
        assertRpcError(r, 429, RL_CODE, r.rpcId);
        const retry = Number(r.headers['retry-after']);
        // 3/minute: one every 20 s once the burst of 3 is spent
        assert.ok(Number.isInteger(retry) && retry >= 19 && retry <= 20, `Retry-After ${r.headers['retry-after']}`);
        assert.equal(r.headers['ratelimit-policy'], '"subject 3/minute";q=3;w=60');
        assert.equal(r.headers.ratelimit, `"subject 3/minute";r=0;t=${retry}`);
        assert.match(r.headers['x-request-id'] || '', /\S/);
        assert.ok(await metric(gw(), 'mcpgate_rate_limited_total{route="/subj",key_kind="subject"}') >= 1,
            'refusals are counted');
    }));

    test(`${name}: a per-tool limit counts only matching tools/call, per subject`, T(async () => {
        const tok = token('/tool');
        assert.deepEqual(await statuses(4, () => call(gw(), '/tool', tok, { tool: 'echo' })), [200, 200, 429, 429]);
        const r = await call(gw(), '/tool', tok, { tool: 'echo_more' }); // matches echo* too: its own bucket
        assert.equal(r.status, 200);
        assert.equal((await call(gw(), '/tool', tok, { tool: 'add' })).status, 200, 'a tool the glob does not match');
        assert.equal((await call(gw(), '/tool', tok, { method: 'tools/list' })).status, 200, 'not a tool call');
        assert.equal((await call(gw(), '/tool', token('/tool'), { tool: 'echo' })).status, 200, 'another subject');
        const lim = await call(gw(), '/tool', tok, { tool: 'echo' });
        assertRpcError(lim, 429, RL_CODE, lim.rpcId);
        assert.equal(lim.headers['ratelimit-policy'], '"tool:echo* 2/minute";q=2;w=60');
    }));

    test(`${name}: a per-client limit is shared by the client's subjects`, T(async () => {
        const client = `app-${process.pid}-${++seq}`;
        const st = await statuses(5, (i) => call(gw(), '/client', token('/client', { clientId: client })));
        assert.deepEqual(st, [200, 200, 200, 429, 429]);
        assert.equal((await call(gw(), '/client', token('/client', { clientId: `${client}-other` }))).status, 200);
    }));

    test(`${name}: a refused request consumes nothing in the other buckets`, T(async () => {
        const tok = token('/mixed'); // subject 2/minute, tool:echo 1/minute
        assert.equal((await call(gw(), '/mixed', tok, { tool: 'echo' })).status, 200); // subject 1, echo 1
        const refused = await call(gw(), '/mixed', tok, { tool: 'echo' });
        assert.equal(refused.status, 429, 'echo bucket is empty');
        assert.equal(refused.headers.ratelimit.split(';')[0], '"tool:echo 1/minute"');
        // had the refused call been counted by the subject bucket, this would be refused
        assert.equal((await call(gw(), '/mixed', tok, { method: 'tools/list' })).status, 200);
        assert.equal((await call(gw(), '/mixed', tok, { method: 'tools/list' })).status, 429);
    }));

    test(`${name}: an unprotected route's route limit`, T(async () => {
        const st = await statuses(5, () => rawRequest(gw().port, req('GET', '/open')));
        assert.deepEqual(st, [200, 200, 200, 429, 429]);
    }));
}

describe('without a redis block: the in-process limiter', () => {
    before(async () => {
        await gateway('local');
    });
    exactLimits('local');
});

describe('with Redis', () => {
    before(async () => {
        await gateway('a', redisBlock(redis));
        await gateway('b', redisBlock(redis));
        await gateway('deny', redisBlock(redis, 'deny'));
        await gateway('allow', redisBlock(redis, 'allow'));
    });

    exactLimits('a');

    test('the limits live in Redis: hash-tagged keys with a TTL', T(async () => {
        const tok = token('/subj');
        assert.equal((await call(gws.a, '/subj', tok)).status, 200);
        const keys = redis.keys('mg:rl:*');
        assert.ok(keys.length > 0, 'bucket keys in Redis');
        for (const k of keys) assert.match(k, /^mg:rl:\{[0-9a-f]{16}\}:[a-z]+:[0-9a-f]{32}$/);
        const ttl = Number(redis.cli('PTTL', keys[0]));
        assert.ok(ttl > 0 && ttl <= 3600 * 1000, `PTTL ${ttl}`);
    }));

    test('two gateway processes sharing one Redis enforce one global limit', T(async () => {
        const tok = token('/global'); // 4/minute
        const st = await statuses(8, (i) => call(i % 2 ? gws.b : gws.a, '/global', tok));
        assert.equal(count(st, 200), 4, `statuses ${st}`);
        assert.deepEqual(st.slice(0, 4), [200, 200, 200, 200]);
        assert.equal(count(st, 429), 4);
    }));

    test('a session created through one process is refused to another caller on the second', T(async () => {
        const alice = token('/sess', { sub: `alice-${process.pid}` });
        const bob = token('/sess', { sub: `bob-${process.pid}` });
        const init = await rawRequest(gws.a.port, req('POST', '/sess', {
            'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${alice}`,
        }, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '0' } } })));
        assert.equal(init.status, 200, init.text);
        const sid = init.headers['mcp-session-id'];
        assert.ok(sid, 'session id relayed');
        const skeys = redis.keys('mg:sess:*');
        assert.ok(skeys.length >= 1, 'the binding is in Redis');
        const ttl = Number(redis.cli('PTTL', skeys[0]));
        assert.ok(ttl > 0 && ttl <= 3600 * 1000, `binding PTTL ${ttl}`);
        const mark = up.mark();
        const h = { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-03-26' };
        const stolen = await call(gws.b, '/sess', bob, { method: 'tools/list', headers: h });
        assert.equal(stolen.status, 404, stolen.text);
        assert.equal(JSON.parse(stolen.text).id, stolen.rpcId, 'a JSON-RPC error for the request');
        assert.ok(JSON.parse(stolen.text).error, stolen.text); // the code is the front door's
        assert.equal(up.since(mark).length, 0, 'nothing forwarded for the other caller');
        const own = await call(gws.b, '/sess', alice, { method: 'tools/list', headers: h });
        assert.equal(own.status, 200, `the owner on the other process: ${own.text}`);
        const unknown = await call(gws.b, '/sess', alice, { method: 'tools/list', headers: { ...h, 'Mcp-Session-Id': 'never-issued' } });
        assert.equal(unknown.status, 404);
    }));

    test('SCRIPT FLUSH is survived: limits stay exact and come from Redis', T(async () => {
        assert.equal(redis.cli('SCRIPT', 'FLUSH'), 'OK');
        const mark = gws.a.stderr.length;
        const tok = token('/subj');
        redis.cli('FLUSHALL');
        const st = await statuses(5, (i) => call(i % 2 ? gws.b : gws.a, '/subj', tok));
        assert.deepEqual(st, [200, 200, 200, 429, 429]);
        assert.ok(redis.keys('mg:rl:*').length > 0, 'decided by Redis');
        assert.doesNotMatch(gws.a.stderr.slice(mark), /could not decide/);
    }));

    test('Redis hung (SIGSTOP): every policy answers within the timeout', T(async () => {
        redis.pause();
        try {
            for (const [name, expect] of [['a', 200], ['deny', 503], ['allow', 200]]) {
                for (let i = 0; i < 3; i++) {
                    const t0 = Date.now();
                    const r = await call(gws[name], '/subj', token('/subj'));
                    const ms = Date.now() - t0;
                    assert.equal(r.status, expect, `${name}: ${r.status} ${r.text}`);
                    // timeout 50 ms + a generous margin for a loaded machine and sanitizers
                    assert.ok(ms < 50 + 450, `${name}: request took ${ms} ms with Redis hung`);
                    if (expect === 503) {
                        assert.equal(r.headers['retry-after'], '1');
                        assertRpcError(r, 503, -32003, r.rpcId);
                    }
                }
            }
        } finally {
            redis.resume();
        }
    }));

    test('Redis stopped: local keeps exact per-process limits, deny answers 503, allow lets all through', T(async () => {
        await redis.stop();
        const marks = Object.fromEntries(Object.entries(gws).map(([k, g]) => [k, g.stderr.length]));
        // local: the in-process limiter decides, exactly
        const tok = token('/subj');
        const t0 = Date.now();
        const st = await statuses(5, () => call(gws.a, '/subj', tok));
        assert.deepEqual(st, [200, 200, 200, 429, 429]);
        assert.ok(Date.now() - t0 < 5 * 500, 'fail fast while Redis is down');
        // deny: 503 + Retry-After, nothing forwarded
        const mark = up.mark();
        const d = await call(gws.deny, '/subj', token('/subj'));
        assert.equal(d.status, 503, d.text);
        assert.equal(d.headers['retry-after'], '1');
        assert.equal(up.since(mark).length, 0);
        // allow: no limit at all (unsafe, documented)
        const tokA = token('/subj');
        assert.deepEqual(await statuses(5, () => call(gws.allow, '/subj', tokA)), [200, 200, 200, 200, 200]);
        // the fallback is logged (at most once a second per process, so keep asking a while)
        const logged = /rate limit: redis could not decide .*on_failure local/;
        for (let i = 0; i < 30 && !logged.test(gws.a.stderr.slice(marks.a)); i++) {
            await call(gws.a, '/subj', token('/subj'));
            await sleep(100);
        }
        assert.match(gws.a.stderr.slice(marks.a), logged);
        assert.ok(await metric(gws.a, 'mcpgate_ratelimit_fallbacks_total{mode="local"}') >= 5, 'fallbacks counted');
        assert.ok(await metric(gws.deny, 'mcpgate_ratelimit_fallbacks_total{mode="deny"}') >= 1);
        // sessions fail closed: 503, not forwarded
        const s = await call(gws.b, '/sess', token('/sess'), { method: 'tools/list', headers: { 'Mcp-Session-Id': 'whatever' } });
        assert.equal(s.status, 503);
    }));

    test('Redis restarted: limits come from Redis again (one global limit across processes)', T(async () => {
        const marks = Object.fromEntries(['a', 'b'].map((k) => [k, gws[k].stderr.length]));
        await redis.start(); // same port, empty
        // every worker of both processes reconnects (backoff at most 5 s, jittered)
        for (const k of ['a', 'b']) {
            const until = Date.now() + 15000;
            const re = /redis 127\.0\.0\.1:\d+: connected after/g;
            while (Date.now() < until && (gws[k].stderr.slice(marks[k]).match(re) || []).length < 2) await sleep(100);
            assert.ok((gws[k].stderr.slice(marks[k]).match(re) || []).length >= 2, `${k}: both workers reconnected`);
        }
        const tok = token('/global');
        const st = await statuses(8, (i) => call(i % 2 ? gws.b : gws.a, '/global', tok));
        assert.deepEqual(st, [200, 200, 200, 200, 429, 429, 429, 429]);
        assert.ok(redis.keys('mg:rl:*').length > 0, 'decided by Redis');
    }));
});
