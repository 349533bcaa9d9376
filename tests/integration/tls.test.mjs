// tls.test.mjs -- the TLS listener: requests over TLS 1.2/1.3 with ALPN http/1.1 are forwarded
// with X-Forwarded-Proto https, SSE is relayed event by event over TLS, TLS 1.1 is refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream, SseControl } from './lib/upstream.mjs';
import { RawConn, req } from './lib/rawhttp.mjs';
import { openStream, request } from './lib/sse.mjs';
import { makeCert } from './lib/cert.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline } from './lib/procs.mjs';

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

    test('the plain listener still says X-Forwarded-Proto http', T(async () => {
        const mark = up.mark();
        const r = await request(`http://127.0.0.1:${port}/mcp/plain`);
        assert.equal(r.status, 200);
        assert.equal(up.since(mark)[0].headers['x-forwarded-proto'], 'http');
    }));
});
