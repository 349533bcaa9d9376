// limits.test.mjs -- connection limits (max_connections for the process and for one listener,
// max_connections_per_client): a connection over a limit is closed at accept without a byte
// written, a request sent on it never reaches the upstream, places freed by closed connections
// are taken again, the refusals are counted in /metrics and logged at most once a second; at the
// end the gateway exits 0 with no sanitizer report.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { RawConn, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';

const MAX = 20; // max_connections of the first gateway (2 workers)
const LISTEN_MAX = 3; // max_connections of its second listener
const PER_CLIENT = 5; // max_connections_per_client of the second gateway

let up, gw, port, port2, admin, cgw, cport, cadmin;
const open = []; // every RawConn a test opened, closed in after()
const T = (fn) => showLogsOnFailure(() => [gw, cgw], fn);

before(async () => {
    up = await Upstream.start();
    [port, port2, admin, cport, cadmin] = await freePorts(5);
    // Idle connections must outlive the test: client_timeout is long.
    const timeouts = { client_timeout: '60s' };
    gw = await startGateway({
        conf: baseConfig({
            listen: [port, `listen 127.0.0.1:${port2} { max_connections ${LISTEN_MAX}; }`],
            admin,
            timeouts,
            routes: [['/mcp', up.url('/mcp')]],
            extra: `max_connections ${MAX};\nmax_connections_per_client 0;`,
        }),
    });
    cgw = await startGateway({
        conf: baseConfig({
            listen: cport,
            admin: cadmin,
            timeouts,
            routes: [['/mcp', up.url('/mcp')]],
            extra: `max_connections_per_client ${PER_CLIENT};`,
        }),
    });
});

after(async () => {
    for (const c of open) c.close();
    try {
        if (gw) await gw.stop();
        if (cgw) await cgw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
        cgw?.removeDir();
    }
});

/* A raw connection to 127.0.0.1:<p>, from <from> (any 127/8 address: Linux routes all of it
 * to lo, so a second client address needs no setup). */
function connect(p, from = '127.0.0.1') {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ host: '127.0.0.1', port: p, localAddress: from });
        const t = setTimeout(() => {
            sock.destroy();
            reject(new Error(`connect to ${p} from ${from} timed out`));
        }, 5000);
        sock.once('connect', () => {
            clearTimeout(t);
            const c = new RawConn(sock);
            open.push(c);
            resolve(c);
        });
        sock.once('error', (e) => {
            clearTimeout(t);
            reject(e);
        });
    });
}

function metrics(p) {
    return new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: p, path: '/metrics', timeout: 5000 }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve(body));
        }).on('error', reject);
    });
}

/* The value of one sample line (`name{labels}` exactly as rendered); 0 when absent. */
async function sample(p, key) {
    const text = await metrics(p);
    for (const line of text.split('\n')) {
        if (line.startsWith(key + ' ')) return Number(line.slice(key.length + 1));
    }
    return 0;
}

/* Bounded wait until the gateway holds exactly <n> client connections. */
async function waitOpen(p, n, ms = 5000) {
    const until = Date.now() + ms;
    let v;
    while ((v = await sample(p, 'mcpgate_connections_open')) !== n && Date.now() < until) await sleep(25);
    assert.equal(v, n, `mcpgate_connections_open should reach ${n}`);
}

const refusedKey = (reason) => `mcpgate_connections_refused_total{reason="${reason}"}`;

/* <c> is served: a keep-alive request gets the upstream's 200 and the connection stays open. */
async function served(c, what) {
    await c.write(req('GET', '/mcp/ok'));
    const r = await c.readResponse({ timeout: 5000 });
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.text}`);
    assert.ok(!c.closed, `${what}: stays open`);
}

/* A connection over a limit: the gateway closes it without writing a byte, and the request
 * written on it at once never reaches the upstream. */
async function refused(p, what, from) {
    const mark = up.mark();
    const c = await connect(p, from);
    c.write(req('POST', '/mcp/refused', { 'Content-Type': 'application/json' }, '{}')).catch(() => {});
    assert.ok(await c.waitClose(5000), `${what}: the gateway closes the connection`);
    assert.equal(c.buf.length, 0, `${what}: nothing written (${JSON.stringify(c.buf.toString('latin1'))})`);
    await sleep(100);
    assert.deepEqual(up.since(mark).map((r) => r.url), [], `${what}: the upstream saw nothing`);
}

/* Open <n> idle connections and wait until the gateway (admin port <a>) holds <total>. */
async function openIdle(p, n, a, total, from) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await connect(p, from));
    await waitOpen(a, total);
    return out;
}

function closeAll(conns) {
    for (const c of conns) c.close();
}

describe('max_connections', () => {
    test('the process holds at most max_connections over its workers; freed places are taken again', T(async () => {
        await waitOpen(admin, 0); // the start-up probe is gone
        const before = await sample(admin, refusedKey('max_connections'));
        const idle = await openIdle(port, MAX, admin, MAX);
        await refused(port, `connection ${MAX + 1}`);
        await refused(port2, `connection ${MAX + 1} on the other listener`);
        assert.ok(idle.every((c) => !c.closed), 'the connections within the limit stay open');

        // Closing 5 lets 5 new ones in, and they are served; then the limit holds again.
        closeAll(idle.splice(0, 5));
        await waitOpen(admin, MAX - 5);
        for (let i = 0; i < 5; i++) {
            const c = await connect(port);
            idle.push(c);
            await served(c, `new connection ${i + 1} after 5 closed`);
        }
        await waitOpen(admin, MAX);
        await refused(port, 'again over the limit');

        assert.equal(await sample(admin, refusedKey('max_connections')), before + 3);
        assert.match(gw.stderr, new RegExp(`closed: max_connections ${MAX} reached`));
        closeAll(idle);
        await waitOpen(admin, 0);
    }));

    test('a burst of refusals is counted one by one but logged at most once a second', T(async () => {
        await waitOpen(admin, 0);
        const idle = await openIdle(port, MAX, admin, MAX);
        await sleep(1100); // a new second: the first refusal below is logged
        const before = await sample(admin, refusedKey('max_connections'));
        const mark = gw.stderr.length;
        const t0 = Date.now();
        await Promise.all(Array.from({ length: 10 }, (_, i) => refused(port, `burst ${i + 1}`)));
        const secs = Math.ceil((Date.now() - t0) / 1000) + 1;
        assert.equal(await sample(admin, refusedKey('max_connections')), before + 10);
        const lines = gw.stderr.slice(mark).split('\n').filter((l) => l.includes('max_connections 20 reached'));
        assert.ok(lines.length >= 1 && lines.length <= secs, `${lines.length} log lines for 10 refusals in ${secs} s`);
        closeAll(idle);
        await waitOpen(admin, 0);
    }));

    test('max_connections in a listen block caps that listener only', T(async () => {
        await waitOpen(admin, 0);
        const before = await sample(admin, refusedKey('listen_max_connections'));
        const idle = await openIdle(port2, LISTEN_MAX, admin, LISTEN_MAX);
        await refused(port2, `connection ${LISTEN_MAX + 1} on the capped listener`);
        const other = await connect(port);
        idle.push(other);
        await served(other, 'the other listener');
        assert.equal(await sample(admin, refusedKey('listen_max_connections')), before + 1);
        // A place freed on the capped listener is taken again.
        idle.shift().close();
        await waitOpen(admin, LISTEN_MAX);
        const again = await connect(port2);
        idle.push(again);
        await served(again, 'the capped listener after one closed');
        closeAll(idle);
        await waitOpen(admin, 0);
    }));
});

describe('max_connections_per_client', () => {
    test('one client address holds at most max_connections_per_client; another address still gets in', T(async () => {
        await waitOpen(cadmin, 0);
        const before = await sample(cadmin, refusedKey('max_connections_per_client'));
        const mine = await openIdle(cport, PER_CLIENT, cadmin, PER_CLIENT, '127.0.0.1');
        await refused(cport, `connection ${PER_CLIENT + 1} from 127.0.0.1`, '127.0.0.1');

        // 127.0.0.1 is at its limit, far below max_connections: 127.0.0.2 is another client.
        const others = [];
        for (let i = 0; i < PER_CLIENT; i++) {
            const c = await connect(cport, '127.0.0.2');
            others.push(c);
            await served(c, `connection ${i + 1} from 127.0.0.2`);
        }
        await refused(cport, `connection ${PER_CLIENT + 1} from 127.0.0.2`, '127.0.0.2');
        assert.ok(mine.every((c) => !c.closed), '127.0.0.1 keeps its connections');

        // One of 127.0.0.1's connections closes: it may open one more, and only one.
        mine.shift().close();
        await waitOpen(cadmin, 2 * PER_CLIENT - 1);
        const c = await connect(cport, '127.0.0.1');
        mine.push(c);
        await served(c, '127.0.0.1 after one of its connections closed');
        await refused(cport, '127.0.0.1 at its limit again', '127.0.0.1');

        assert.equal(await sample(cadmin, refusedKey('max_connections_per_client')), before + 3);
        assert.equal(await sample(cadmin, refusedKey('max_connections')), 0);
        assert.match(cgw.stderr, new RegExp(`closed: max_connections_per_client ${PER_CLIENT} reached`));
        closeAll(mine);
        closeAll(others);
        await waitOpen(cadmin, 0);
        // Every client's entry went with its last connection: both addresses start afresh.
        const again = await openIdle(cport, PER_CLIENT, cadmin, PER_CLIENT, '127.0.0.1');
        closeAll(again);
        await waitOpen(cadmin, 0);
    }));
});
