// tls.test.mjs -- the TLS listener: requests over TLS 1.2/1.3 with ALPN http/1.1 are forwarded
// with X-Forwarded-Proto https, SSE is relayed event by event over TLS, TLS 1.1 is refused,
// records that arrive together are all read (read-ahead), large bodies cross both ways, and a
// client that stops reading gets every byte once it reads again.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream, SseControl } from './lib/upstream.mjs';
import { RawConn, req } from './lib/rawhttp.mjs';
import { openStream, request } from './lib/sse.mjs';
import { makeCert } from './lib/cert.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';

let gw, up, port, tport, cert, dir;
const T = (fn) => showLogsOnFailure(() => gw, fn);

before(async () => {
    dir = makeTempDir();
    cert = makeCert(dir);
    up = await Upstream.start();
    [port, tport] = await freePorts(2);
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: [port, `listen 127.0.0.1:${tport} { tls_certificate ${cert.cert}; tls_certificate_key ${cert.key}; }`],
            routes: [['/mcp', up.url('/mcp')]],
        }),
    });
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

const TLSOPTS = () => ({ ca: cert.certPem, ALPNProtocols: ['http/1.1'] });

/* The transport under a TLS client: while <hold> is set, the TLS records written are kept
 * and then leave in one write() (flush), so that the gateway gets them in one read. */
class HeldPipe extends Duplex {
    constructor(sock, { holdAfterFirst = false } = {}) {
        super();
        this.sock = sock;
        this.hold = false;
        this.holdAfterFirst = holdAfterFirst; /* from the second write on: the ClientHello goes */
        this.held = [];
        sock.on('data', (d) => this.push(d));
        sock.on('end', () => this.push(null));
        sock.on('error', (e) => this.destroy(e));
    }
    _read() {}
    _write(chunk, enc, cb) {
        if (this.hold) this.held.push(Buffer.from(chunk));
        else this.sock.write(chunk);
        if (this.holdAfterFirst) {
            this.holdAfterFirst = false;
            this.hold = true;
        }
        cb();
    }
    _final(cb) {
        this.sock.end();
        cb();
    }
    _destroy(e, cb) {
        this.sock.destroy();
        cb(e);
    }
    flush() {
        const b = Buffer.concat(this.held);
        this.hold = false;
        this.held = [];
        return new Promise((resolve) => this.sock.write(b, resolve));
    }
}

/* A TLS connection to the gateway whose writes can be batched: { c: RawConn, pipe }. With
 * <holdAfterFirst>, everything after the ClientHello is held (the client's Finished too). */
async function heldConn({ holdAfterFirst = false } = {}) {
    const sock = net.connect({ host: '127.0.0.1', port: tport });
    await deadline(once(sock, 'connect'), 5000, 'TCP connect');
    const pipe = new HeldPipe(sock, { holdAfterFirst });
    const s = tls.connect({ socket: pipe, host: '127.0.0.1', ...TLSOPTS() });
    await deadline(once(s, 'secureConnect'), 5000, 'TLS handshake');
    return { c: new RawConn(s), pipe };
}

describe('TLS listener', () => {
    test('a request over TLS is forwarded with X-Forwarded-Proto https; TLS 1.2+ and ALPN http/1.1', T(async () => {
        const mark = up.mark();
        const body = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
        const r = await request(`https://127.0.0.1:${tport}/mcp/tls?x=1`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Authorization: 'Bearer t' },
            body,
            tls: TLSOPTS(),
        });
        assert.equal(r.status, 200, r.text);
        assert.ok(['TLSv1.2', 'TLSv1.3'].includes(r.stream.tlsProtocol), `protocol ${r.stream.tlsProtocol}`);
        assert.equal(r.stream.alpnProtocol, 'http/1.1');
        const recs = up.since(mark);
        assert.equal(recs.length, 1);
        await recs[0].complete;
        assert.equal(recs[0].url, '/mcp/tls?x=1');
        assert.equal(recs[0].bodyText, body);
        assert.equal(recs[0].headers['x-forwarded-proto'], 'https');
        assert.equal(recs[0].headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(recs[0].headers['x-forwarded-host'], `127.0.0.1:${tport}`);
        assert.ok(!('authorization' in recs[0].headers));
    }));

    test('a client offering h2 and http/1.1 gets http/1.1; keep-alive works over TLS', T(async () => {
        const c = await RawConn.connect(tport, { tls: { ca: cert.certPem, ALPNProtocols: ['h2', 'http/1.1'] } });
        try {
            assert.equal(c.sock.alpnProtocol, 'http/1.1');
            assert.ok(c.sock.authorized, 'certificate verified against the test CA');
            await c.write(req('GET', '/mcp/a'));
            const r1 = await c.readResponse();
            await c.write(req('GET', '/mcp/b'));
            const r2 = await c.readResponse();
            assert.equal(r1.status, 200);
            assert.equal(r1.json().url, '/mcp/a');
            assert.equal(r2.json().url, '/mcp/b');
        } finally {
            c.close();
        }
    }));

    test('TLS 1.2 and TLS 1.3 clients are both accepted', T(async () => {
        for (const v of ['TLSv1.2', 'TLSv1.3']) {
            const c = await RawConn.connect(tport, { tls: { ca: cert.certPem, minVersion: v, maxVersion: v } });
            try {
                assert.equal(c.sock.getProtocol(), v);
                await c.write(req('GET', '/mcp/v'));
                assert.equal((await c.readResponse()).status, 200, v);
            } finally {
                c.close();
            }
        }
    }));

    test('SSE over TLS is relayed event by event', T(async () => {
        const ctl = new SseControl();
        up.route('/mcp/tls-sse', ctl.handler());
        const sp = openStream(`https://127.0.0.1:${tport}/mcp/tls-sse`, { headers: { Accept: 'text/event-stream' }, tls: TLSOPTS() });
        sp.catch(() => {});
        await deadline(ctl.opened, 5000, 'upstream request');
        await ctl.send({ n: 1 });
        const s = await sp;
        try {
            for (let n = 1; n <= 3; n++) {
                if (ctl.sent < n) await ctl.send({ n });
                await s.waitEvents(n, 3000);
                assert.equal(s.events.length, n);
            }
            assert.deepEqual(s.events.map((e) => e.json.n), [1, 2, 3]);
        } finally {
            s.close();
        }
    }));

    test('a TLS 1.1-only client is refused (the same client reaches a TLS 1.1 control server)', T(async () => {
        const clientOpts = { ca: cert.certPem, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
        // control: this client really speaks TLS 1.1
        const ctrl = tls.createServer({ key: cert.keyPem, cert: cert.certPem, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => s.end());
        await new Promise((r) => ctrl.listen(0, '127.0.0.1', r));
        try {
            const proto = await deadline(
                new Promise((resolve, reject) => {
                    const c = tls.connect({ host: '127.0.0.1', port: ctrl.address().port, ...clientOpts }, () => {
                        resolve(c.getProtocol());
                        c.destroy();
                    });
                    c.on('error', reject);
                }),
                5000,
                'control handshake',
            );
            assert.equal(proto, 'TLSv1.1');
        } finally {
            ctrl.close();
        }
        const outcome = await deadline(
            new Promise((resolve) => {
                const c = tls.connect({ host: '127.0.0.1', port: tport, ...clientOpts }, () => {
                    resolve(`handshake succeeded with ${c.getProtocol()}`);
                    c.destroy();
                });
                c.on('error', (e) => resolve(`error ${e.code || e.message}`));
                c.on('close', () => resolve('closed'));
            }),
            5000,
            'TLS 1.1 handshake outcome',
        );
        assert.doesNotMatch(outcome, /handshake succeeded/, outcome);
    }));

    test('records that arrive in one segment are all read: head and body, pipelined requests', T(async () => {
        const { c, pipe } = await heldConn();
        try {
            // One request as two records (head, then body), sent together.
            const mark = up.mark();
            const body = '{"jsonrpc":"2.0","id":7,"method":"ping"}';
            pipe.hold = true;
            await c.write(req('POST', '/mcp/split', { 'Content-Type': 'application/json', 'Content-Length': body.length }));
            await c.write(body);
            assert.ok(pipe.held.length >= 2, `records held: ${pipe.held.length}`);
            await pipe.flush();
            const r = await c.readResponse();
            assert.equal(r.status, 200, r.text);
            assert.equal(r.json().body, body);
            assert.equal(up.since(mark).length, 1);
            // Three pipelined requests, one record each, sent together.
            pipe.hold = true;
            for (const p of ['a', 'b', 'c']) await c.write(req('GET', `/mcp/p-${p}`));
            assert.ok(pipe.held.length >= 3, `records held: ${pipe.held.length}`);
            await pipe.flush();
            for (const p of ['a', 'b', 'c']) {
                const rp = await c.readResponse();
                assert.equal(rp.status, 200);
                assert.equal(rp.json().url, `/mcp/p-${p}`);
            }
            // And the connection goes on as usual.
            await c.write(req('GET', '/mcp/after'));
            assert.equal((await c.readResponse()).json().url, '/mcp/after');
        } finally {
            c.close();
        }
        // The client's Finished and its first request in one segment (TLS 1.3: the client
        // may send data right after its Finished).
        const h = await heldConn({ holdAfterFirst: true });
        try {
            await h.c.write(req('GET', '/mcp/first'));
            assert.ok(h.pipe.held.length >= 2, `records held: ${h.pipe.held.length}`);
            await h.pipe.flush();
            const r = await h.c.readResponse();
            assert.equal(r.status, 200);
            assert.equal(r.json().url, '/mcp/first');
        } finally {
            h.c.close();
        }
    }));

    test('a 600 KB request body and its 600 KB echo cross TLS intact', T(async () => {
        const c = await RawConn.connect(tport, { tls: TLSOPTS() });
        try {
            const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(600 * 1024) } });
            for (let i = 0; i < 2; i++) {
                await c.write(req('POST', '/mcp/big', { 'Content-Type': 'application/json' }, big));
                const r = await c.readResponse({ method: 'POST', timeout: 10000 });
                assert.equal(r.status, 200);
                assert.equal(r.json().body, big);
            }
        } finally {
            c.close();
        }
    }));

    test('a client that stops reading: its socket fills up, then every byte arrives in order', T(async () => {
        const TOTAL = 16 * 1024 * 1024;
        const st = { written: 0, waiting: false, ended: false, lastWrite: 0, sha: null };
        up.route('/mcp/tls-firehose', async (rq, res) => {
            res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': TOTAL });
            const h = crypto.createHash('sha256');
            let closed = false;
            res.on('close', () => (closed = true));
            for (let i = 0; st.written < TOTAL && !closed; i++) {
                const b = Buffer.alloc(64 * 1024, i % 251);
                b.writeUInt32BE(i, 0);
                h.update(b);
                st.written += b.length;
                st.lastWrite = Date.now();
                if (!res.write(b)) {
                    st.waiting = true;
                    await new Promise((resolve) => {
                        res.once('drain', resolve);
                        res.once('close', resolve);
                    });
                    st.waiting = false;
                }
            }
            st.sha = h.digest('hex');
            res.end();
            st.ended = true;
        });
        const sock = tls.connect({ host: '127.0.0.1', port: tport, ...TLSOPTS() });
        try {
            await deadline(once(sock, 'secureConnect'), 5000, 'TLS handshake');
            sock.pause(); // read nothing until told
            sock.write(req('GET', '/mcp/tls-firehose'));
            // The gateway's socket and its relay buffer fill up, then the upstream stalls.
            await deadline(
                (async () => {
                    while (!(st.waiting && Date.now() - st.lastWrite > 500)) {
                        assert.ok(!st.ended, 'the upstream wrote everything: the client socket never filled up');
                        await sleep(50);
                    }
                })(),
                20000,
                `the upstream to stall (written ${st.written})`,
            );
            // Now read it all: the head, then the body hashed as it comes.
            const got = { head: null, pending: Buffer.alloc(0), bytes: 0, hash: crypto.createHash('sha256') };
            const done = new Promise((resolve) => {
                sock.on('data', (d) => {
                    if (got.head === null) {
                        got.pending = Buffer.concat([got.pending, d]);
                        const i = got.pending.indexOf('\r\n\r\n');
                        if (i < 0) return;
                        got.head = got.pending.subarray(0, i).toString('latin1');
                        d = got.pending.subarray(i + 4);
                    }
                    got.hash.update(d);
                    got.bytes += d.length;
                    if (got.bytes >= TOTAL) resolve();
                });
                sock.on('close', resolve);
            });
            sock.resume();
            await deadline(done, 30000, `the whole body (got ${got.bytes} of ${TOTAL})`);
            assert.match(got.head, /^HTTP\/1\.1 200 /);
            assert.equal(got.bytes, TOTAL, 'every byte arrived');
            assert.equal(got.hash.digest('hex'), st.sha, 'the bytes arrived in order, unchanged');
        } finally {
            sock.destroy();
        }
    }));

    test('the plain listener still says X-Forwarded-Proto http', T(async () => {
        const mark = up.mark();
        const r = await request(`http://127.0.0.1:${port}/mcp/plain`);
        assert.equal(r.status, 200);
        assert.equal(up.since(mark)[0].headers['x-forwarded-proto'], 'http');
    }));
});
