// issuer.test.mjs -- issuers whose keys are fetched (docs/keys.md): discovery from a real
// authorization server (oidc-provider), key rotation and unknown-kid refetches against a JWKS
// server that counts its fetches, a flood of made-up kids, an outage, readiness and
// Cache-Control.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';
import { keygen, mint } from './lib/tokens.mjs';
import { OidcAS, JwksServer } from './lib/as.mjs';

let up, dir;
const gws = [];
const T = (fn) => showLogsOnFailure(() => gws, fn);

before(async () => {
    up = await Upstream.start();
    dir = makeTempDir('mcpgate-issuer-');
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

async function readyz(admin) {
    return (await rawRequest(admin, req('GET', '/readyz'))).status;
}

/* Bounded: poll /readyz until 200. */
async function waitReady(admin, ms = 10000) {
    const until = Date.now() + ms;
    for (let i = 0; i < ms / 50 && Date.now() < until; i++) {
        if ((await readyz(admin)) === 200) return;
        await sleep(50);
    }
    assert.fail(`/readyz not 200 within ${ms} ms`);
}

/* Retry while the gateway answers 503 (honouring Retry-After, bounded by <ms>); returns the
 * first other response and the statuses seen. */
async function settle(port, tok, ms) {
    const seen = [];
    const until = Date.now() + ms;
    for (let i = 0; i < 100 && Date.now() < until; i++) {
        const r = await call(port, tok);
        seen.push(r.status);
        if (r.status !== 503) return { r, seen };
        const ra = Number(r.headers['retry-after']);
        assert.ok(ra >= 1, `503 without a usable Retry-After: ${JSON.stringify(r.headers)}`);
        assert.equal(r.headers['www-authenticate'], undefined, '503 must carry no challenge');
        await sleep(Math.min(ra * 1000, 250));
    }
    return { r: null, seen };
}

function gatewayConf({ port, admin, issuers, routeIssuers, resource, extra = '' }) {
    return baseConfig({
        listen: port,
        admin,
        extra: `${extra}
${issuers}
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${resource};
${routeIssuers.map((i) => `    issuer ${i};`).join('\n')}
}
`,
    });
}

describe('discovery from a real authorization server (oidc-provider)', () => {
    let as, gw, port, admin, resource, other;
    before(async () => {
        let asPort;
        [port, admin, asPort] = await freePorts(3);
        resource = `http://127.0.0.1:${port}/mcp`;
        other = `http://127.0.0.1:${port}/other`;
        as = await new OidcAS({ port: asPort, dir, resources: [resource, other] }).start();
        gw = await startGateway({
            dir,
            confName: 'oidc.conf',
            conf: gatewayConf({
                port, admin, resource,
                issuers: `issuer ${as.issuer} { allow_http on; }`,
                routeIssuers: [as.issuer],
            }),
        });
        gws.push(gw);
    });
    after(async () => {
        try {
            if (gw) await gw.stop();
        } finally {
            if (as) await as.stop();
        }
    });

    test('keys found from the issuer URL alone; a client_credentials token is accepted', T(async () => {
        await waitReady(admin);
        // the log line is written as the keys are installed; its bytes may reach this
        // process a moment after /readyz answers: wait for it (bounded)
        const keysLine = /issuer http:\/\/127\.0\.0\.1:\d+: \d+ keys? from http:\/\/127\.0\.0\.1:\d+\/jwks/;
        for (let i = 0; i < 60 && !keysLine.test(gw.stderr); i++) await sleep(50);
        assert.match(gw.stderr, keysLine);
        const t = await as.token({ resource });
        assert.equal(t.status, 200, JSON.stringify(t.json));
        const r = await call(port, t.json.access_token);
        assert.equal(r.status, 200, `${r.status} ${r.headers['www-authenticate'] || ''} ${r.text}`);
    }));

    test('a token for another resource is refused with 401 invalid_token', T(async () => {
        const t = await as.token({ resource: other });
        assert.equal(t.status, 200, JSON.stringify(t.json));
        const r = await call(port, t.json.access_token);
        assert.equal(r.status, 401);
        assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
    }));

    test('a reload keeps the key set: no refetch', T(async () => {
        const before = await as.jwksFetches();
        await gw.reload(null, { waitRe: /configuration reloaded/ });
        const t = await as.token({ resource });
        assert.equal((await call(port, t.json.access_token)).status, 200);
        await sleep(300);
        assert.equal(await as.jwksFetches(), before, 'a reload must not refetch the key set');
    }));
});

/* mcpgate_jwks_unknown_kid_total and mcpgate_jwks_kid_refetches_total of <iss>. */
async function kidCounters(admin, iss) {
    const text = (await rawRequest(admin, req('GET', '/metrics'))).text;
    const get = (name) => {
        const line = text.split('\n').find((l) => l.startsWith(`${name}{issuer="${iss}"} `));
        return line ? Number(line.split(' ').pop()) : 0;
    };
    return { unknown: get('mcpgate_jwks_unknown_kid_total'), refetches: get('mcpgate_jwks_kid_refetches_total') };
}

describe('rotation, unknown kids and outages (a JWKS server that counts fetches)', () => {
    const ISS = 'https://rotating.test.invalid';
    const COOLDOWN = 2;
    let js, gw, port, admin, resource, kA, kB, kC;
    before(async () => {
        [port, admin] = await freePorts(2);
        resource = `http://127.0.0.1:${port}/mcp`;
        kA = keygen(dir, 'ES256', 'key-a');
        kB = keygen(dir, 'ES256', 'key-b');
        kC = keygen(dir, 'RS256', 'key-c');
        js = new JwksServer();
        js.setKeys([kA]);
        await js.start();
        gw = await startGateway({
            dir,
            confName: 'rot.conf',
            conf: gatewayConf({
                port, admin, resource,
                issuers: `issuer ${ISS} { jwks_uri ${js.url()}; allow_http on; kid_refetch_cooldown ${COOLDOWN}s; }`,
                routeIssuers: [ISS],
            }),
        });
        gws.push(gw);
        await waitReady(admin);
    });
    after(async () => {
        try {
            if (gw) await gw.stop();
        } finally {
            if (js) await js.stop();
        }
    });

    test('a token signed with a newly published key is accepted within one cooldown', T(async () => {
        assert.equal((await call(port, mint(kA, { iss: ISS, aud: resource }))).status, 200);
        js.setKeys([kA, kB]);
        const t0 = Date.now();
        const { r, seen } = await settle(port, mint(kB, { iss: ISS, aud: resource }), (COOLDOWN + 3) * 1000);
        assert.ok(r, `still 503 after ${Date.now() - t0} ms: ${seen}`);
        assert.equal(r.status, 200, `statuses ${seen}`);
        assert.ok(Date.now() - t0 <= (COOLDOWN + 2) * 1000, `took ${Date.now() - t0} ms`);
    }));

    test("a removed key's token is refused once a refetch has seen the new set", T(async () => {
        const tokA = mint(kA, { iss: ISS, aud: resource });
        js.setKeys([kB, kC]); // A retired, C new
        const c = await settle(port, mint(kC, { iss: ISS, aud: resource }), (COOLDOWN + 3) * 1000);
        assert.equal(c.r?.status, 200, `statuses ${c.seen}`);
        // the set now lacks A: a 503 while its kid is checked once more, then 401
        const a = await settle(port, tokA, (COOLDOWN + 3) * 1000);
        assert.equal(a.r?.status, 401, `statuses ${a.seen}`);
        assert.match(a.r.headers['www-authenticate'], /error="invalid_token"/);
        // and, being known absent now, at once
        assert.equal((await call(port, tokA)).status, 401);
    }));

    test('a flood of 50 made-up kids causes at most one fetch per cooldown', T(async () => {
        await sleep(COOLDOWN * 1000 + 200); // the last refetch's cooldown is over
        const toks = [];
        for (let i = 0; i < 50; i++)
            toks.push(mint({ ...kB, kid: `rnd-${crypto.randomBytes(6).toString('hex')}` }, { iss: ISS, aud: resource }));
        const f0 = js.fetches;
        const m0 = await kidCounters(admin, ISS);
        const t0 = Date.now();
        const res = await Promise.all(toks.map((t) => call(port, t)));
        for (const r of res) assert.ok([503, 401].includes(r.status), `status ${r.status}`);
        // again and again for two cooldowns: they become 401, and fetches stay bounded
        for (let round = 0; round < 4; round++) {
            await sleep(COOLDOWN * 500);
            const again = await Promise.all(toks.map((t) => call(port, t)));
            for (const r of again) assert.ok([503, 401].includes(r.status), `status ${r.status}`);
        }
        const elapsed = (Date.now() - t0) / 1000;
        const fetched = js.fetches - f0;
        assert.ok(fetched >= 1, 'the unknown kids caused no refetch at all');
        assert.ok(fetched <= Math.ceil(elapsed / COOLDOWN) + 1,
            `${fetched} fetches in ${elapsed.toFixed(1)} s with a ${COOLDOWN} s cooldown`);
        // the same in /metrics: every lookup counted, the refetches bounded like the fetches
        const m1 = await kidCounters(admin, ISS);
        const el = (Date.now() - t0) / 1000;
        assert.ok(m1.unknown - m0.unknown >= 250, `unknown-kid lookups ${m1.unknown - m0.unknown}`);
        assert.ok(m1.refetches - m0.refetches >= 1 && m1.refetches - m0.refetches <= Math.ceil(el / COOLDOWN) + 1,
            `${m1.refetches - m0.refetches} kid refetches in ${el.toFixed(1)} s`);
        // each made-up kid ends as 401 (its absence is remembered for one cooldown, after
        // which the next lookup may wait for one more refetch: 503 in between)
        for (const t of toks.slice(0, 5)) {
            const { r, seen } = await settle(port, t, (COOLDOWN + 3) * 1000);
            assert.equal(r?.status, 401, `statuses ${seen}`);
        }
        // a good token is unaffected
        assert.equal((await call(port, mint(kB, { iss: ISS, aud: resource }))).status, 200);
    }));

    test('JWKS server down: tokens that were valid stay accepted', T(async () => {
        await js.stop();
        for (const k of [kB, kC]) assert.equal((await call(port, mint(k, { iss: ISS, aud: resource }))).status, 200);
        // an unknown kid cannot be judged now: 503, never 401 (SPEC C-14)
        await sleep(COOLDOWN * 1000 + 200);
        const r = await call(port, mint({ ...kB, kid: 'during-outage' }, { iss: ISS, aud: resource }));
        assert.equal(r.status, 503);
        await sleep(COOLDOWN * 1000 + 500);
        const r2 = await call(port, mint({ ...kB, kid: 'during-outage' }, { iss: ISS, aud: resource }));
        assert.equal(r2.status, 503, 'a failed refetch must not turn an unknown kid into 401');
        assert.match(gw.stderr, /cannot fetch keys/);
        assert.equal(await readyz(admin), 200, 'readiness does not flap on a refresh failure');
    }));
});

describe('startup without a reachable key source', () => {
    const ISS = 'https://unreachable.test.invalid';
    let gw, port, admin, resource, dead;
    before(async () => {
        [port, admin, dead] = await freePorts(3);
        resource = `http://127.0.0.1:${port}/mcp`;
        gw = await startGateway({
            dir,
            confName: 'dead.conf',
            conf: gatewayConf({
                port, admin, resource,
                extra: 'startup_grace 2s;',
                issuers: `issuer ${ISS} { jwks_uri http://127.0.0.1:${dead}/jwks; allow_http on; }`,
                routeIssuers: [ISS],
            }),
        });
        gws.push(gw);
    });
    after(async () => {
        if (gw) await gw.stop();
    });

    test('503 with Retry-After, and /readyz 503 until startup_grace', T(async () => {
        const t0 = Date.now();
        assert.equal(await readyz(admin), 503);
        const kX = keygen(dir, 'ES256', 'key-x');
        const r = await call(port, mint(kX, { iss: ISS, aud: resource }));
        assert.equal(r.status, 503);
        assert.ok(Number(r.headers['retry-after']) >= 1);
        assert.equal(r.headers['www-authenticate'], undefined);
        await sleep(Math.max(0, 2300 - (Date.now() - t0)));
        assert.equal(await readyz(admin), 200, 'ready once startup_grace has passed');
        assert.equal((await call(port, mint(kX, { iss: ISS, aud: resource }))).status, 503);
    }));
});

describe('Cache-Control', () => {
    const ISS = 'https://cached.test.invalid';
    let gw, js, port, admin, resource, k;
    before(async () => {
        [port, admin] = await freePorts(2);
        resource = `http://127.0.0.1:${port}/mcp`;
        k = keygen(dir, 'EdDSA', 'key-cc');
        js = new JwksServer();
        js.setKeys([k], { cacheControl: 'public, max-age=1' });
        await js.start();
        gw = await startGateway({
            dir,
            confName: 'cc.conf',
            conf: gatewayConf({
                port, admin, resource,
                issuers: `issuer ${ISS} { jwks_uri ${js.url()}; allow_http on; jwks_min_refresh 2s; }`,
                routeIssuers: [ISS],
            }),
        });
        gws.push(gw);
        await waitReady(admin);
    });
    after(async () => {
        try {
            if (gw) await gw.stop();
        } finally {
            if (js) await js.stop();
        }
    });

    test('max-age=1 is clamped up to jwks_min_refresh 2s: refreshed every ~1.6 s, not faster', T(async () => {
        const t0 = js.fetchTimes[0];
        await sleep(4000);
        const n = js.fetches;
        assert.ok(n >= 2, `no background refresh in 4 s (${n} fetch)`);
        for (let i = 1; i < js.fetchTimes.length; i++) {
            const gap = js.fetchTimes[i] - js.fetchTimes[i - 1];
            assert.ok(gap >= 1400, `refetched after ${gap} ms, faster than 80% of jwks_min_refresh`);
        }
        assert.ok(n <= Math.ceil((Date.now() - t0) / 1600) + 1, `${n} fetches`);
        assert.equal((await call(port, mint(k, { iss: ISS, aud: resource }))).status, 200);
    }));
});
