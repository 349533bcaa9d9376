// lifecycle.test.mjs -- the running process: admin /healthz and /readyz, SIGHUP reload (new
// routes without a restart, in-flight streams untouched, a broken file keeps the old config and
// is reported as FILE:LINE), SIGTERM drain (in-flight requests finish, new connections refused,
// exit 0 within drain_timeout).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Gateway, startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream, SseControl, slow } from './lib/upstream.mjs';
import { RawConn, rawRequest, req } from './lib/rawhttp.mjs';
import { openStream } from './lib/sse.mjs';
import { freePorts, canConnect } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';
import { assertRpcError, RPC } from './lib/assert.mjs';

let up;
const gws = [];
const streams = [];

before(async () => {
    up = await Upstream.start();
    up.route('/slow', slow(1500));
});

after(async () => {
    for (const s of streams) s.close();
    const errs = [];
    for (const gw of gws) {
        try {
            await gw.stop();
        } catch (e) {
            errs.push(e);
        }
        gw.removeDir();
    }
    await up?.stop();
    if (errs.length) throw errs[0];
});

/* Poll GET <path> until it answers <status> (bounded). */
async function waitStatus(port, p, status, ms = 5000) {
    const until = Date.now() + ms;
    let last;
    for (let i = 0; i < ms / 100 + 1 && Date.now() < until; i++) {
        last = await rawRequest(port, req('GET', p)).catch((e) => ({ status: e.message }));
        if (last.status === status) return last;
        await sleep(100);
    }
    throw new Error(`GET ${p}: wanted ${status} within ${ms} ms, last ${last?.status} ${last?.text}`);
}

describe('admin listener and reload', () => {
    let gw, port, admin;
    const T = (fn) => showLogsOnFailure(() => gw, fn);
    const conf = (routes, extra = '') =>
        baseConfig({ listen: port, admin, routes, extra });

    before(async () => {
        [port, admin] = await freePorts(2);
        gw = await startGateway({ conf: conf([['/mcp', up.url('/mcp')]]) });
        gws.push(gw);
    });

    test('GET /healthz and /readyz on the admin listener -> 200', T(async () => {
        for (const p of ['/healthz', '/readyz']) {
            const r = await rawRequest(admin, req('GET', p));
            assert.equal(r.status, 200, `${p}: ${r.text}`);
        }
    }));

    test('admin paths are not served on the proxy listener', T(async () => {
        const mark = up.mark();
        assertRpcError(await rawRequest(port, req('GET', '/healthz')), 404, RPC.NOT_FOUND);
        assert.equal(up.since(mark).length, 0);
    }));

    test('SIGHUP with a new route: served without a restart, an open SSE stream keeps streaming', T(async () => {
        const pid = gw.pid;
        const ctl = new SseControl();
        up.route('/mcp/long', ctl.handler());
        const sp = openStream(`http://127.0.0.1:${port}/mcp/long`, { headers: { Accept: 'text/event-stream' } });
        sp.catch(() => {});
        await deadline(ctl.opened, 5000, 'stream request upstream');
        await ctl.send({ n: 1 });
        const s = await sp;
        streams.push(s);
        await s.waitEvents(1, 3000);

        assertRpcError(await rawRequest(port, req('GET', '/new/x')), 404, RPC.NOT_FOUND, null, 'before reload');
        await gw.reload(conf([['/mcp', up.url('/mcp')], ['/new', up.url('/fresh')]]), { settleMs: 0 });
        const r = await waitStatus(port, '/new/x', 200);
        assert.equal(r.json().url, '/fresh/x');
        assert.equal(gw.pid, pid);
        assert.ok(gw.running, 'same process still running');
        assert.equal((await rawRequest(port, req('GET', '/mcp/still'))).status, 200, 'old route still served');

        assert.equal(s.ended, false, 'stream survived the reload');
        await ctl.send({ n: 2 });
        await s.waitEvents(2, 3000);
        await ctl.send({ n: 3 });
        await s.waitEvents(3, 3000);
        assert.deepEqual(s.events.map((e) => e.json.n), [1, 2, 3]);
        ctl.end();
        await s.waitEnd(3000);
    }));

    test('SIGHUP with a broken config: the old config keeps serving, the error is FILE:LINE', T(async () => {
        const good = gw.conf;
        // a route change that would be visible (/new removed) plus an error on a known line
        const lines = conf([['/mcp', up.url('/mcp')]]).split('\n');
        lines.splice(3, 0, 'client_timeout banana;');
        const badLine = 4;
        const mark = gw.stderr.length;
        gw.writeConfig(lines.join('\n'));
        gw.hup();
        const name = path.basename(gw.confPath).replace('.', '\\.');
        const re = new RegExp(`${name}:${badLine}\\b`);
        assert.ok(await gw.waitStderr(re, 5000, mark), `stderr names ${gw.confPath}:${badLine}; got:\n${gw.stderr.slice(mark)}`);
        await sleep(200);
        assert.ok(gw.running, 'still running');
        const r = await rawRequest(port, req('GET', '/new/y'));
        assert.equal(r.status, 200, 'route from the old (current) config still served');
        assert.equal(r.json().url, '/fresh/y');
        assert.equal((await rawRequest(port, req('GET', '/mcp/z'))).status, 200);
        // a good config afterwards is taken again
        await gw.reload(good.replace(`route /new { upstream ${up.url('/fresh')}; }`, `route /third { upstream ${up.url('/3')}; }`), { settleMs: 0 });
        assert.equal((await waitStatus(port, '/third', 200)).json().url, '/3');
        assertRpcError(await rawRequest(port, req('GET', '/new/y')), 404, RPC.NOT_FOUND, null, 'removed route');
    }));
});

describe('SIGTERM drain', () => {
    test('in-flight request completes, new connections are refused, exit 0 within drain_timeout', async () => {
        const [port] = await freePorts(1);
        const gw = new Gateway({ conf: baseConfig({ listen: port, timeouts: { drain_timeout: '5s' }, routes: [['/mcp', up.url('/slow')]] }), drainMs: 5000 });
        gws.push(gw);
        await showLogsOnFailure(() => gw, async () => {
            await gw.start();
            const idle = await RawConn.connect(port); // an idle keep-alive connection
            const mark = up.mark();
            const c = await RawConn.connect(port);
            try {
                await c.write(req('POST', '/mcp', { 'Content-Type': 'application/json' }, '{"jsonrpc":"2.0","id":1,"method":"ping"}'));
                await up.waitRequests(mark + 1, 3000);
                const t0 = Date.now();
                const stopping = gw.stop({ check: false });
                // the listener goes away promptly
                let refused = false;
                for (let i = 0; i < 20 && !refused; i++) {
                    await sleep(50);
                    refused = !(await canConnect(port, '127.0.0.1', 200));
                }
                assert.ok(refused, 'new connections refused while draining');
                const r = await c.readResponse({ timeout: 5000 });
                assert.equal(r.status, 200, 'the in-flight request completed');
                assert.equal(r.json().url, '/slow');
                const res = await stopping;
                assert.ok(!res.forced, 'exited by itself');
                assert.ok(Date.now() - t0 < 5000 + 500, `exited within drain_timeout (${Date.now() - t0} ms)`);
                gw.check(res);
                assert.ok(await idle.waitClose(1000), 'idle connection closed');
            } finally {
                c.close();
                idle.close();
            }
        })();
    });

    test('an endless SSE stream does not hold the process past drain_timeout; it exits 0', async () => {
        const [port] = await freePorts(1);
        const gw = new Gateway({ conf: baseConfig({ listen: port, timeouts: { drain_timeout: '2s' }, routes: [['/mcp', up.url('/mcp')]] }), drainMs: 2000 });
        gws.push(gw);
        await showLogsOnFailure(() => gw, async () => {
            await gw.start();
            const ctl = new SseControl();
            up.route('/mcp/endless', ctl.handler());
            const sp = openStream(`http://127.0.0.1:${port}/mcp/endless`, { headers: { Accept: 'text/event-stream' } });
            sp.catch(() => {});
            await deadline(ctl.opened, 5000, 'stream request upstream');
            await ctl.send({ n: 1 });
            const s = await sp;
            streams.push(s);
            await s.waitEvents(1, 3000);
            const t0 = Date.now();
            const res = await gw.stop({ check: false });
            const dt = Date.now() - t0;
            assert.ok(!res.forced, 'exited by itself');
            // the gateway may end open-ended streams at once (clients reconnect elsewhere) or
            // keep them until drain_timeout; either way it must be gone by then
            assert.ok(dt < 2000 + 1500, `exit within drain_timeout 2s (${dt} ms)`);
            gw.check(res);
            await s.waitEnd(2000);
            await deadline(ctl.closed, 2000, 'upstream side of the stream closed');
        })();
    });
});
