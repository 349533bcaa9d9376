// reload-leak.test.mjs -- repeated SIGHUP reloads of a protected-route config under traffic: every
// request keeps its expected answer across the generation switches, and the gateway then exits 0
// with no sanitizer report (with the sanitizer build of tests/run, LeakSanitizer runs at exit: a
// generation, key set, token cache or route table that a reload forgot to release is reported).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream, SseControl } from './lib/upstream.mjs';
import { RawConn, rawRequest, req } from './lib/rawhttp.mjs';
import { openStream } from './lib/sse.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';
import { keygen, writeJwks, mint } from './lib/tokens.mjs';

const RELOADS = 30;
const ISS = 'https://issuer.test.invalid';
const ISS2 = 'https://second.test.invalid';
let gw, up, port, dir, resource, es, ed, second, jwksFile, jwks2File;
const T = (fn) => showLogsOnFailure(() => gw, fn);

/* Variant <v> of the protected config: the /mcp route and its issuer never change, so every
 * request has one right answer whichever generation serves it; the rest comes and goes. */
function conf(v) {
    const extra = [
        `issuer ${ISS} { jwks_file ${jwksFile}; }`,
        `route /mcp {\n    upstream ${up.url('/mcp')};\n    resource ${resource};\n    issuer ${ISS};\n}`,
    ];
    if (v % 3 !== 0) {
        extra.push(`issuer ${ISS2} { jwks_file ${jwks2File}; algorithms ES256; }`);
        extra.push(
            `route /second {\n    upstream ${up.url('/second')};\n    resource http://127.0.0.1:${port}/second;\n` +
                `    issuer ${ISS2};\n}`,
        );
    }
    if (v % 2 === 1) extra.push(`route /extra-${v} { upstream ${up.url('/extra')}; }`);
    return baseConfig({ listen: port, routes: [['/open', up.url('/open')]], extra: extra.join('\n') });
}

before(async () => {
    up = await Upstream.start();
    [port] = await freePorts(1);
    dir = makeTempDir('mcpgate-reload-leak-');
    resource = `http://127.0.0.1:${port}/mcp`;
    es = keygen(dir, 'ES256', 'es-1');
    ed = keygen(dir, 'EdDSA', 'ed-1');
    second = keygen(dir, 'ES256', 'second-1');
    jwksFile = writeJwks(path.join(dir, 'issuer.jwks.json'), [es, ed]);
    jwks2File = writeJwks(path.join(dir, 'second.jwks.json'), [second]);
    gw = await startGateway({ dir, conf: conf(0) });
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

const rpc = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
const post = (target, headers = {}) => req('POST', target, { 'Content-Type': 'application/json', ...headers }, rpc);

describe('reloads under traffic', () => {
    test(`${RELOADS} reloads of a protected config: answers unchanged, clean exit, no leak report`, T(async (t) => {
        const good = mint(es, { iss: ISS, aud: resource, scope: 'mcp:tools' });
        const goodEd = mint(ed, { iss: ISS, aud: resource });
        const forged = mint(second, { iss: ISS, aud: resource }); // a key ISS does not have
        const cases = [
            [() => post('/mcp', { Authorization: `Bearer ${good}` }), 200],
            [() => post('/mcp', { Authorization: `Bearer ${goodEd}` }), 200],
            [() => post('/mcp'), 401],
            [() => post('/mcp', { Authorization: `Bearer ${forged}` }), 401],
            [() => post('/mcp', { Authorization: 'Bearer not-a-jwt' }), 401],
            [() => req('GET', '/open/x'), 200],
        ];
        const bad = [];
        let done = false;
        let sent = 0;

        // Two one-request-per-connection loops and one kept-alive connection.
        const oneShot = async (k) => {
            for (let i = k; !done; i++) {
                const [mk, want] = cases[i % cases.length];
                try {
                    const r = await rawRequest(port, mk(), { timeout: 10000 });
                    if (r.status !== want) bad.push(`case ${i % cases.length}: ${r.status}, wanted ${want}`);
                } catch (e) {
                    bad.push(`case ${i % cases.length}: ${e.message}`);
                }
                sent++;
            }
        };
        const keptAlive = async () => {
            let c = null;
            for (let i = 0; !done; i++) {
                try {
                    c ??= await RawConn.connect(port);
                    const [mk, want] = cases[i % 2];
                    await c.write(mk());
                    const r = await c.readResponse({ timeout: 10000, method: 'POST' });
                    if (r.status !== want) bad.push(`kept-alive ${i}: ${r.status}, wanted ${want}`);
                    if (/close/i.test(r.headers.connection || '')) {
                        c.close();
                        c = null;
                    }
                } catch (e) {
                    bad.push(`kept-alive ${i}: ${e.message}`);
                    c?.close();
                    c = null;
                }
                sent++;
            }
            c?.close();
        };
        // An SSE stream on the protected route that stays open across every reload.
        const ctl = new SseControl();
        up.route('/mcp/stream', ctl.handler());
        const sp = openStream(`http://127.0.0.1:${port}/mcp/stream`, {
            headers: { Accept: 'text/event-stream', Authorization: `Bearer ${good}` },
        });
        sp.catch(() => {});
        await deadline(ctl.opened, 10000, 'SSE stream request upstream');
        const stream = await sp;
        assert.equal(stream.status, 200);

        const loops = [oneShot(0), oneShot(3), keptAlive()];
        try {
            for (let i = 1; i <= RELOADS; i++) {
                if (i % 10 === 5) {
                    // A refused reload on the way: its half-built generation is freed too.
                    await gw.reload(conf(i) + '\nno_such_directive on;\n', { waitRe: /reload failed/, ms: 15000 });
                }
                if (i % 7 === 0) {
                    // Key rotation by reload: the same keys in a new order, so answers stay the same.
                    writeJwks(jwksFile, i % 14 === 0 ? [es, ed] : [ed, es]);
                }
                await gw.reload(conf(i), { waitRe: /configuration reloaded/, ms: 15000 });
                if (i % 10 === 0) {
                    await ctl.send({ reload: i });
                    await stream.waitEvents(i / 10, 5000);
                }
                await sleep(20);
            }
        } finally {
            done = true;
            await Promise.all(loops);
        }
        assert.ok(gw.running, 'the gateway is still running');
        assert.equal(stream.ended, false, 'the SSE stream survived every reload');
        assert.deepEqual(stream.events.map((e) => e.json.reload), [10, 20, 30]);
        ctl.end();
        await stream.waitEnd(5000);
        assert.deepEqual(bad, [], `${bad.length} of ${sent} requests got a wrong answer`);
        assert.ok(sent >= RELOADS, `traffic ran during the reloads (${sent} requests)`);
        t.diagnostic(`${RELOADS} reloads, ${sent} requests during them`);
        // The last generation is the one serving: a route of the one before it is gone.
        assert.equal((await rawRequest(port, req('GET', `/extra-${RELOADS - 1}/x`))).status, 404);
        assert.equal((await rawRequest(port, req('GET', '/open/x'))).status, 200);

        const res = await gw.stop(); // throws on a non-zero exit or any sanitizer report
        assert.equal(res.code, 0);
        assert.doesNotMatch(gw.stderr, /LeakSanitizer|AddressSanitizer|runtime error:/);
    }));
});
