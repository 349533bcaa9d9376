// upstream-reuse.test.mjs -- an upstream that answers before it has read the whole request:
// the connection must not go back to the pool with the request's tail still queued, or the
// next request would be written ahead of that tail, inside the first request's body (a
// request-smuggling primitive: the tail is the first client's bytes, unchecked).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { RawConn, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';

let gw, port, upPort, server;
const seen = []; // per upstream connection: { requests: [{line, bodyOk}], ... }
const sockets = new Set();
const T = (fn) => showLogsOnFailure(() => gw, fn);
const BODY = 8 * 1024 * 1024; // more than loopback socket buffers take at once

/* A raw HTTP/1.1 upstream: answers "200 ok" as soon as a request head arrives, then reads
 * the body slowly (64 KiB every 2 ms) and checks that it is exactly Content-Length bytes of
 * 'x' before the next request head. */
function earlyAnswerServer() {
    return net.createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        const conn = { requests: [] };
        seen.push(conn);
        let buf = Buffer.alloc(0);
        let left = 0; // body bytes still expected
        let cur = null;
        const pump = () => {
            for (;;) {
                if (left > 0) {
                    if (buf.length === 0) return;
                    const n = Math.min(left, buf.length);
                    const chunk = buf.subarray(0, n);
                    if (chunk.some((b) => b !== 0x78)) cur.bodyOk = false;
                    buf = buf.subarray(n);
                    left -= n;
                    continue;
                }
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const head = buf.subarray(0, end).toString('latin1');
                buf = buf.subarray(end + 4);
                const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
                left = m ? Number(m[1]) : 0;
                cur = { line: head.split('\r\n')[0], bodyOk: true };
                conn.requests.push(cur);
                sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
            }
        };
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            pump();
            // Read slowly: the gateway's send of a large body must block and queue.
            sock.pause();
            setTimeout(() => sock.resume(), 2);
        });
        sock.on('error', () => {});
    });
}

before(async () => {
    [port, upPort] = await freePorts(2);
    server = earlyAnswerServer();
    await new Promise((r) => server.listen(upPort, '127.0.0.1', r));
    gw = await startGateway({
        conf: baseConfig({
            listen: port,
            workers: 1,
            timeouts: { upstream_timeout: '10s', client_timeout: '10s', max_body_size: '16m' },
            routes: [['/mcp', `http://127.0.0.1:${upPort}/mcp`]],
        }),
    });
});

after(async () => {
    await gw?.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
});

describe('upstream connection reuse', () => {
    test('an answer before the whole request was sent: the next request never lands inside its body', T(async () => {
        const c = await RawConn.connect(port, { timeout: 30000 });
        try {
            const body = Buffer.alloc(BODY, 0x78);
            c.write(Buffer.concat([Buffer.from(req('POST', '/mcp/one', { 'Content-Type': 'application/json', 'Content-Length': BODY }), 'latin1'), body])).catch(() => {});
            const r1 = await c.readResponse({ timeout: 20000, method: 'POST' });
            assert.equal(r1.status, 200);
            await c.write(req('GET', '/mcp/two', { Accept: 'text/event-stream' }));
            const r2 = await c.readResponse({ timeout: 20000 });
            assert.equal(r2.status, 200, `second request: ${r2.status} ${r2.text}`);
        } finally {
            c.sock.destroy();
        }
        const all = seen.flatMap((s) => s.requests);
        assert.ok(all.every((r) => r.bodyOk), `a request body held other bytes: ${JSON.stringify(all)}`);
        const two = seen.find((s) => s.requests.some((r) => r.line.startsWith('GET /mcp/two')));
        assert.ok(two, 'the second request reached the upstream');
        assert.ok(!two.requests.some((r) => r.line.startsWith('POST /mcp/one')),
            'the second request went out on a fresh connection, not behind the first body');
    }));
});
