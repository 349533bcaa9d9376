// backpressure.test.mjs -- a fast upstream and a client that does not read: the gateway stops
// reading the upstream once its client backlog passes MG_RELAY_HIGH_WATER (src/core/conn.c), so
// its memory stays bounded and the upstream's writes stall; once the client reads, every byte
// arrives, in order.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import crypto from 'node:crypto';
import { once } from 'node:events';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';

const TOTAL = 64 * 1024 * 1024; // bytes the upstream tries to send
const CHUNK = 64 * 1024; // one SSE event per write
const RSS_GROWTH_MAX = 16 * 1024 * 1024;

let gw, up, port;
const T = (fn) => showLogsOnFailure(() => gw, fn);
const sockets = [];

before(async () => {
    // Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default), so RSS would
    // count every byte relayed so far, not what the gateway holds: keep freed memory reusable.
    // (Read by lib/gateway.mjs when it starts the gateway; no effect on other builds.)
    process.env.ASAN_OPTIONS = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':');
    up = await Upstream.start();
    [port] = await freePorts(1);
    gw = await startGateway({
        conf: baseConfig({
            listen: port,
            workers: 1,
            timeouts: { upstream_timeout: '5s', client_timeout: '5s' },
            routes: [['/mcp', up.url('/mcp')]],
        }),
    });
});

after(async () => {
    for (const s of sockets) s.destroy();
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

/* VmRSS of <pid> in bytes. */
function rss(pid) {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m[1]) * 1024;
}

/* Event <i>: exactly CHUNK bytes, numbered so that reordering or loss changes the hash. */
function event(i) {
    const head = `id: ${i}\ndata: {"n":${i},"pad":"`;
    const tail = '"}\n\n';
    return Buffer.from(head + 'x'.repeat(CHUNK - head.length - tail.length) + tail);
}

/* Upstream handler: writes TOTAL bytes of SSE as fast as the socket takes them, honouring
 * res.write() === false (waits for 'drain'); records progress in <st>. */
function firehose(st) {
    return async (req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        res.on('close', () => (st.closed = true));
        const h = crypto.createHash('sha256');
        for (let i = 0; st.written < TOTAL && !st.closed; i++) {
            const ev = event(i);
            h.update(ev);
            st.written += ev.length;
            st.lastWrite = Date.now();
            if (!res.write(ev)) {
                st.stalls++;
                st.waiting = true;
                await new Promise((resolve) => {
                    const go = () => {
                        res.off('drain', go);
                        res.off('close', go);
                        resolve();
                    };
                    res.on('drain', go);
                    res.on('close', go);
                });
                st.waiting = false;
            }
        }
        st.sha = h.digest('hex');
        res.end();
        st.ended = true;
    };
}

/* Minimal incremental HTTP/1.1 response reader: head, then a chunked body hashed on the fly. */
class ChunkedSink {
    constructor() {
        this.buf = Buffer.alloc(0);
        this.head = null;
        this.hash = crypto.createHash('sha256');
        this.bytes = 0;
        this.need = -1; // bytes left in the current chunk (+2 for its CRLF); -1: at a size line
        this.done = false;
        this.error = null;
    }

    feed(d) {
        this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
        for (let guard = 0; guard < 1e7 && !this.done && !this.error; guard++) {
            if (this.head === null) {
                const i = this.buf.indexOf('\r\n\r\n');
                if (i < 0) return;
                this.head = this.buf.subarray(0, i).toString('latin1');
                this.buf = this.buf.subarray(i + 4);
                if (!/\r\ntransfer-encoding:\s*chunked/i.test(this.head)) this.error = `not chunked: ${this.head}`;
                continue;
            }
            if (this.need < 0) {
                const i = this.buf.indexOf('\r\n');
                if (i < 0) return;
                const size = parseInt(this.buf.subarray(0, i).toString('latin1').split(';')[0], 16);
                this.buf = this.buf.subarray(i + 2);
                if (!Number.isFinite(size)) {
                    this.error = 'bad chunk size';
                    return;
                }
                if (size === 0) {
                    this.done = true;
                    return;
                }
                this.need = size + 2;
                continue;
            }
            if (this.buf.length === 0) return;
            const take = Math.min(this.need, this.buf.length);
            const data = this.buf.subarray(0, take);
            const payload = data.subarray(0, Math.min(take, Math.max(0, this.need - 2))); // not the CRLF
            this.hash.update(payload);
            this.bytes += payload.length;
            this.need -= take;
            this.buf = this.buf.subarray(take);
            if (this.need === 0) this.need = -1;
        }
    }
}

describe('relay backpressure', () => {
    test('a client that does not read: gateway memory bounded, upstream stalled; then every byte in order', T(async (t) => {
        const st = { written: 0, stalls: 0, waiting: false, closed: false, ended: false, lastWrite: 0, sha: null };
        up.route('/mcp/firehose', firehose(st));
        await sleep(200);
        const rss0 = rss(gw.pid);

        const sock = net.connect({ host: '127.0.0.1', port });
        sockets.push(sock);
        await once(sock, 'connect');
        sock.pause(); // read nothing until told
        sock.write('GET /mcp/firehose HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');

        // Wait until the upstream is blocked on 'drain' and has made no progress for a while.
        await deadline(
            (async () => {
                for (let i = 0; i < 1000; i++) {
                    if (st.waiting && Date.now() - st.lastWrite > 750) return;
                    assert.ok(!st.ended, `the upstream wrote all ${TOTAL} bytes: no backpressure`);
                    await sleep(50);
                }
            })(),
            20000,
            `the upstream to stall (written ${st.written}, stalls ${st.stalls})`,
        );
        const stalledAt = st.written;
        const rss1 = rss(gw.pid);
        await sleep(500);
        const rss2 = rss(gw.pid);
        assert.equal(st.written, stalledAt, 'the upstream stays stalled while the client does not read');
        assert.ok(st.waiting, "the upstream's write is still waiting for 'drain'");
        assert.ok(stalledAt < TOTAL / 2, `stalled after ${stalledAt} bytes, well before the end`);
        const growth = Math.max(rss1, rss2) - rss0;
        t.diagnostic(`upstream stalled after ${stalledAt} bytes (${st.stalls} waits for drain); gateway RSS ${rss0} -> ${rss1}, ${rss2}`);
        assert.ok(growth < RSS_GROWTH_MAX, `gateway RSS grew by ${growth} bytes (from ${rss0}), limit ${RSS_GROWTH_MAX}`);

        // Now read everything.
        const sink = new ChunkedSink();
        const ended = new Promise((resolve) => {
            sock.on('data', (d) => {
                sink.feed(d);
                if (sink.done || sink.error) resolve();
            });
            sock.on('close', resolve);
        });
        sock.resume();
        await deadline(ended, 60000, `the whole body (got ${sink.bytes} of ${TOTAL})`);
        assert.equal(sink.error, null);
        assert.match(sink.head, /^HTTP\/1\.1 200 /);
        assert.equal(sink.bytes, TOTAL, 'every byte arrived');
        assert.ok(st.ended, 'the upstream finished');
        assert.equal(sink.hash.digest('hex'), st.sha, 'the bytes arrived in order, unchanged');
        sock.destroy();
    }));
});
