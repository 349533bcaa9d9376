// streaming.test.mjs -- SSE responses are relayed event by event (each event reaches the client
// before the upstream writes the next one), on a POST response and on a long-lived GET stream;
// disconnects propagate both ways.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream, SseControl } from './lib/upstream.mjs';
import { openStream } from './lib/sse.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';

let gw, up, port;
const T = (fn) => showLogsOnFailure(() => gw, fn);
const url = (p) => `http://127.0.0.1:${port}${p}`;
const streams = [];

before(async () => {
    up = await Upstream.start();
    [port] = await freePorts(1);
    gw = await startGateway({
        conf: baseConfig({
            listen: port,
            // upstream_timeout bounds the wait for response headers only, never a running stream
            timeouts: { upstream_timeout: '1s', client_timeout: '2s' },
            routes: [['/mcp', up.url('/mcp')]],
        }),
    });
});

after(async () => {
    for (const s of streams) s.close();
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

const POST_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

/* Open a stream through the gateway to an upstream SseControl at <path>; resolves once the
 * client has the response head (the first event is sent to make sure a gateway that waits for
 * body bytes before relaying the head still gets there). */
async function open(path, opts, firstEvent) {
    const ctl = new SseControl();
    up.route(path, ctl.handler());
    const sp = openStream(url(path), { timeout: 5000, ...opts });
    sp.catch(() => {});
    await deadline(ctl.opened, 5000, `upstream to receive ${path}`);
    await ctl.send(firstEvent.data, firstEvent);
    const s = await sp;
    streams.push(s);
    return [ctl, s];
}

/* Send events one at a time; each must reach the client before the next one is written. */
async function lockstep(ctl, s, from, to) {
    for (let n = from; n <= to; n++) {
        if (ctl.sent < n) await ctl.send({ jsonrpc: '2.0', method: 'notifications/message', params: { n } }, { id: `e${n}`, event: 'message' });
        await s.waitEvents(n, 3000);
        assert.equal(s.events.length, n, `exactly ${n} events so far`);
        assert.equal(ctl.sent, n, 'the upstream has not sent more yet');
    }
}

describe('SSE relay', () => {
    test('POST answered with SSE: events relayed one by one, then the end', T(async () => {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'x' } });
        const [ctl, s] = await open('/mcp/post-sse', { method: 'POST', headers: POST_HEADERS, body }, {
            data: { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } },
            id: 'e1',
            event: 'message',
        });
        assert.equal(s.status, 200);
        assert.match(s.headers['content-type'], /^text\/event-stream/);
        await s.waitEvents(1, 3000);
        assert.equal(s.events[0].json.params.progress, 1);
        assert.equal(s.events[0].id, 'e1', 'event id relayed');
        assert.equal(s.events[0].event, 'message', 'event type relayed');
        assert.equal(s.ended, false, 'stream still open after event 1');
        await ctl.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 2 } }, { id: 'e2' });
        await s.waitEvents(2, 3000);
        assert.equal(s.events[1].json.params.progress, 2);
        assert.equal(s.ended, false);
        await ctl.send({ jsonrpc: '2.0', id: 5, result: { content: [] } }, { id: 'e3' });
        await s.waitEvents(3, 3000);
        assert.equal(s.events[2].json.id, 5);
        ctl.end();
        await s.waitEnd(3000);
        assert.equal(s.complete, true, 'response completed normally');
        assert.equal(s.events.length, 3);
    }));

    test('long-lived GET stream: events relayed one by one, stream stays open', T(async () => {
        const [ctl, s] = await open('/mcp/get-sse', { headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': 's1' } }, {
            data: { jsonrpc: '2.0', method: 'notifications/message', params: { n: 1 } },
            id: 'e1',
        });
        assert.equal(s.status, 200);
        assert.match(s.headers['content-type'], /^text\/event-stream/);
        await lockstep(ctl, s, 1, 5);
        assert.deepEqual(s.events.map((e) => e.json.params.n), [1, 2, 3, 4, 5]);
        // idle longer than upstream_timeout (1s): the running stream must not be cut
        await sleep(1500);
        assert.equal(s.ended, false, 'stream still open after an idle period longer than upstream_timeout');
        await ctl.send({ jsonrpc: '2.0', method: 'notifications/message', params: { n: 6 } });
        await s.waitEvents(6, 3000);
        assert.equal(s.ended, false);
        s.close();
    }));

    test('a burst of 200 events arrives complete and in order', T(async () => {
        const [ctl, s] = await open('/mcp/burst', { headers: { Accept: 'text/event-stream' } }, { data: { n: 0 } });
        for (let i = 1; i < 200; i++) ctl.send({ n: i, pad: 'x'.repeat(i % 50) });
        await s.waitEvents(200, 5000);
        assert.deepEqual(s.events.map((e) => e.json.n), Array.from({ length: 200 }, (_, i) => i));
        ctl.end();
        await s.waitEnd(3000);
    }));
});

describe('large events', () => {
    test('a 256 KiB event is relayed whole, and the next event after it', T(async () => {
        const [ctl, s] = await open('/mcp/big', { headers: { Accept: 'text/event-stream' } }, { data: { n: 0 } });
        await s.waitEvents(1, 3000);
        const blob = 'z'.repeat(256 * 1024);
        await ctl.send({ n: 1, blob });
        await s.waitEvents(2, 5000);
        assert.equal(s.events[1].json.blob.length, blob.length);
        await ctl.send({ n: 2 });
        await s.waitEvents(3, 3000);
        assert.equal(s.events[2].json.n, 2);
        ctl.end();
        await s.waitEnd(3000);
    }));
});

describe('disconnects', () => {
    test('client disconnects mid-stream -> the upstream sees its response connection closed', T(async () => {
        const [ctl, s] = await open('/mcp/client-gone', { headers: { Accept: 'text/event-stream' } }, { data: { n: 1 } });
        await s.waitEvents(1, 3000);
        s.close();
        const res = await deadline(ctl.closed, 5000, 'upstream to see the stream closed after the client left');
        assert.equal(res.aborted, true, 'closed before the upstream ended it');
    }));

    test('upstream closes mid-stream -> the client sees the stream end', T(async () => {
        const [ctl, s] = await open('/mcp/upstream-gone', { headers: { Accept: 'text/event-stream' } }, { data: { n: 1 } });
        await s.waitEvents(1, 3000);
        await ctl.send({ n: 2 });
        await s.waitEvents(2, 3000);
        ctl.destroy();
        await s.waitEnd(5000);
        assert.deepEqual(s.events.map((e) => e.json.n), [1, 2]);
    }));

    test('upstream ends the stream -> the client sees a complete response', T(async () => {
        const [ctl, s] = await open('/mcp/upstream-end', { headers: { Accept: 'text/event-stream' } }, { data: { n: 1 } });
        await s.waitEvents(1, 3000);
        ctl.end();
        await s.waitEnd(3000);
        assert.equal(s.complete, true);
    }));
});

describe('stream timers (own gateways)', () => {
    const extra = [];
    after(async () => {
        for (const g of extra) {
            await g.stop();
            g.removeDir();
        }
    });

    async function gatewayWith(timeouts) {
        const [p] = await freePorts(1);
        const g = await startGateway({ conf: baseConfig({ listen: p, timeouts, routes: [['/mcp', up.url('/mcp')]] }) });
        extra.push(g);
        return [g, p];
    }

    test('sse_keepalive 500ms: an idle stream gets ": keepalive" comments, events still arrive', async () => {
        const [g, p] = await gatewayWith({ sse_keepalive: '500ms' });
        await showLogsOnFailure(() => g, async () => {
            const ctl = new SseControl();
            up.route('/mcp/ka', ctl.handler());
            const sp = openStream(`http://127.0.0.1:${p}/mcp/ka`, { headers: { Accept: 'text/event-stream' } });
            sp.catch(() => {});
            await deadline(ctl.opened, 5000, 'upstream request');
            await ctl.send({ n: 1 });
            const s = await sp;
            streams.push(s);
            await s.waitEvents(1, 3000);
            await s.until((x) => (x.raw.match(/^: ?keepalive/gm) || []).length >= 2, 3000, 'two keepalive comments');
            await ctl.send({ n: 2 });
            await s.waitEvents(2, 3000);
            assert.deepEqual(s.events.map((e) => e.json.n), [1, 2], 'comments are not events');
            s.close();
        })();
    });

    test('sse_keepalive off: no comments are injected', T(async () => {
        const [ctl, s] = await open('/mcp/noka', { headers: { Accept: 'text/event-stream' } }, { data: { n: 1 } });
        await s.waitEvents(1, 3000);
        await sleep(1200);
        assert.doesNotMatch(s.raw, /keepalive/);
        ctl.end();
        await s.waitEnd(3000);
    }));

    test('stream_idle_timeout 1s: a silent stream is closed on both sides', async () => {
        const [g, p] = await gatewayWith({ stream_idle_timeout: '1s' });
        await showLogsOnFailure(() => g, async () => {
            const ctl = new SseControl();
            up.route('/mcp/idle', ctl.handler());
            const sp = openStream(`http://127.0.0.1:${p}/mcp/idle`, { headers: { Accept: 'text/event-stream' } });
            sp.catch(() => {});
            await deadline(ctl.opened, 5000, 'upstream request');
            await ctl.send({ n: 1 });
            const s = await sp;
            streams.push(s);
            await s.waitEvents(1, 3000);
            // events every 400 ms keep it alive past 1 s
            for (let i = 2; i <= 4; i++) {
                await sleep(400);
                await ctl.send({ n: i });
                await s.waitEvents(i, 3000);
            }
            assert.equal(s.ended, false, 'a stream with traffic is not idle');
            const t0 = Date.now();
            await s.waitEnd(4000);
            const dt = Date.now() - t0;
            assert.ok(dt >= 700 && dt < 3000, `closed about 1 s after the last byte (${dt} ms)`);
            await deadline(ctl.closed, 3000, 'upstream side closed too');
        })();
    });
});
