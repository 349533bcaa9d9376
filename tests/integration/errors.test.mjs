// errors.test.mjs -- requests the gateway must refuse itself: the status, the JSON-RPC error body,
// and that the upstream never saw them; plus 502/504 for a dead, resetting or silent upstream.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream, never, reset, hangUp } from './lib/upstream.mjs';
import { RawConn, rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';
import { assertRpcError, RPC } from './lib/assert.mjs';

let gw, up, port, deadPort;
const T = (fn) => showLogsOnFailure(() => gw, fn);

before(async () => {
    up = await Upstream.start();
    up.route('/slow', never()).route('/reset', reset()).route('/hangup', hangUp());
    up.route('/garbage', (q) => q.socket.end('THIS IS NOT HTTP\r\n\r\n'));
    [port, deadPort] = await freePorts(2);
    gw = await startGateway({
        conf: baseConfig({
            listen: port,
            timeouts: {
                client_timeout: '2s',
                upstream_timeout: '2s',
                upstream_connect_timeout: '1s',
                max_body_size: '64k',
                max_header_size: '8k',
                drain_timeout: '5s',
            },
            routes: [
                ['/mcp', up.url('/mcp')],
                ['/dead', `http://127.0.0.1:${deadPort}/mcp`],
                ['/slow', up.url('/slow')],
                ['/reset', up.url('/reset')],
                ['/hangup', up.url('/hangup')],
                ['/garbage', up.url('/garbage')],
            ],
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

/* Send <bytes>, expect a JSON-RPC error reply, and check the upstream saw no request. */
async function refused(bytes, status, code, { id = null, timeout = 4000, what } = {}) {
    const mark = up.mark();
    const resp = await rawRequest(port, bytes, { timeout });
    assertRpcError(resp, status, code, id, what || JSON.stringify(String(bytes).slice(0, 80)));
    await sleep(50);
    assert.deepEqual(
        up.since(mark).map((r) => `${r.method} ${r.url}`),
        [],
        `upstream must see nothing for ${what || JSON.stringify(String(bytes).slice(0, 80))}`,
    );
    return resp;
}

const RPCBODY = (id) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' });

describe('method and path', () => {
    test('PUT, PATCH, TRACE -> 405 with Allow: GET, POST, DELETE, OPTIONS', T(async () => {
        for (const m of ['PUT', 'PATCH', 'TRACE']) {
            const body = m === 'TRACE' ? null : '{}';
            const resp = await refused(req(m, '/mcp', { 'Content-Type': 'application/json' }, body), 405, RPC.INVALID, { what: m });
            assert.equal(resp.headers.allow, 'GET, POST, DELETE, OPTIONS', `${m}: Allow header`);
        }
    }));

    test('unknown path -> 404 (-32601), also no match inside a segment', T(async () => {
        for (const p of ['/nope', '/mcpx', '/mc', '/', '/deadx/y']) {
            await refused(req('GET', p), 404, RPC.NOT_FOUND, { what: `GET ${p}` });
        }
    }));

    test('bad paths -> 400', T(async () => {
        for (const p of ['/mcp/../x', '/mcp/%2e%2e/x', '/mcp/%2E%2E/x', '//mcp', '/mcp%2fx', '/mcp%2Fx', '/mcp/%00', '/mcp/../../etc/passwd']) {
            await refused(req('GET', p), 400, RPC.INVALID, { what: `GET ${p}` });
        }
    }));
});

describe('malformed requests -> 400 (-32600), never forwarded', () => {
    test('malformed request lines', T(async () => {
        const lines = [
            'BLAH\r\n\r\n',
            'GET /mcp\r\nHost: 127.0.0.1\r\n\r\n',
            'GET  /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
            'GET mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
            'GET /mcp HTTP/1.1 x\r\nHost: 127.0.0.1\r\n\r\n',
            'GET /mcp HTTX/1.1\r\nHost: 127.0.0.1\r\n\r\n',
        ];
        for (const l of lines) await refused(l, 400, RPC.INVALID);
    }));

    test('both Content-Length and Transfer-Encoding', T(async () => {
        const body = '5\r\nhello\r\n0\r\n\r\n';
        await refused(req('POST', '/mcp', { 'Content-Length': '5', 'Transfer-Encoding': 'chunked' }, body), 400, RPC.INVALID);
        await refused(req('POST', '/mcp', { 'Transfer-Encoding': 'chunked', 'Content-Length': '5' }, body), 400, RPC.INVALID);
    }));

    test('two differing Content-Length headers', T(async () => {
        await refused(req('POST', '/mcp', { 'Content-Length': ['5', '6'] }, 'hello!'), 400, RPC.INVALID);
        await refused(req('POST', '/mcp', { 'Content-Length': '5, 6' }, 'hello!'), 400, RPC.INVALID);
    }));

    test('invalid Content-Length values', T(async () => {
        for (const v of ['-1', '+5', 'abc', '0x5', '5 5', '99999999999999999999999']) {
            await refused(req('POST', '/mcp', { 'Content-Length': v }, 'hello'), 400, RPC.INVALID, { what: `Content-Length: ${v}` });
        }
    }));

    test('invalid header lines', T(async () => {
        const bad = [
            'GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX Bad: 1\r\n\r\n', // space in a field name
            'GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColon\r\n\r\n',
            'GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Nul: a\u0000b\r\n\r\n',
            'GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n: empty-name\r\n\r\n',
        ];
        for (const b of bad) await refused(b, 400, RPC.INVALID);
    }));

    test('"Transfer-Encoding : chunked" (space before the colon)', T(async () => {
        await refused(
            'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
            400,
            RPC.INVALID,
        );
    }));

    test('"0x" chunk size', T(async () => {
        await refused(
            req('POST', '/mcp', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/json' }, '0x2\r\n{}\r\n0\r\n\r\n'),
            400,
            RPC.INVALID,
        );
    }));

    test('two Host headers', T(async () => {
        await refused(req('GET', '/mcp', { Host: ['127.0.0.1', 'evil.example'] }), 400, RPC.INVALID);
    }));

    test('missing Host in HTTP/1.1', T(async () => {
        await refused('GET /mcp HTTP/1.1\r\nAccept: */*\r\n\r\n', 400, RPC.INVALID);
    }));

    test('unsupported HTTP version -> 505', T(async () => {
        await refused('GET /mcp HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n', 505, RPC.INVALID);
    }));
});

describe('limits and timeouts', () => {
    test('Content-Length above max_body_size (64k) -> 413 without waiting for the body', T(async () => {
        const t0 = Date.now();
        await refused(
            req('POST', '/mcp', { 'Content-Type': 'application/json', 'Content-Length': String(64 * 1024 + 1) }),
            413,
            RPC.INVALID,
        );
        assert.ok(Date.now() - t0 < 1500, `413 must come before client_timeout (took ${Date.now() - t0} ms)`);
    }));

    test('chunked body exceeding max_body_size -> 413', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            const chunk = 'a'.repeat(16 * 1024);
            const enc = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
            await c.write(req('POST', '/mcp', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/json' }));
            // 5 x 16k = 80k > 64k; the gateway may answer (and stop reading) before the end
            for (let i = 0; i < 5; i++) await c.write(enc).catch(() => {});
            await c.write('0\r\n\r\n').catch(() => {});
            const resp = await c.readResponse({ timeout: 4000 });
            assertRpcError(resp, 413, RPC.INVALID);
        } finally {
            c.close();
        }
        await sleep(50);
        assert.equal(up.since(mark).length, 0, 'upstream must see nothing');
    }));

    test('headers above max_header_size (8k) -> 431', T(async () => {
        await refused(req('GET', '/mcp', { 'X-Big': 'b'.repeat(9000) }), 431, RPC.INVALID);
        const many = {};
        for (let i = 0; i < 100; i++) many[`X-H${i}`] = 'v'.repeat(100);
        await refused(req('GET', '/mcp', many), 431, RPC.INVALID, { what: '100 headers of 100 bytes' });
    }));

    test('body stalls beyond client_timeout (2s) -> 408 (-32000)', T(async () => {
        const t0 = Date.now();
        await refused(
            req('POST', '/mcp', { 'Content-Type': 'application/json', 'Content-Length': '50' }) + '{"jsonrpc":',
            408,
            RPC.TIMEOUT408,
            { timeout: 6000 },
        );
        const dt = Date.now() - t0;
        assert.ok(dt >= 1500 && dt < 5000, `408 after about client_timeout (took ${dt} ms)`);
    }));

    test('head stalls beyond client_timeout (2s) -> 408', T(async () => {
        const t0 = Date.now();
        await refused('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: ', 408, RPC.TIMEOUT408, { timeout: 6000 });
        const dt = Date.now() - t0;
        assert.ok(dt >= 1500 && dt < 5000, `408 after about client_timeout (took ${dt} ms)`);
    }));
});

describe('upstream failures', () => {
    test('nothing listening upstream -> 502 (-32002) echoing the JSON-RPC id', T(async () => {
        let resp = await rawRequest(port, req('POST', '/dead', { 'Content-Type': 'application/json' }, RPCBODY(7)));
        assertRpcError(resp, 502, RPC.BAD_GATEWAY, 7);
        resp = await rawRequest(port, req('POST', '/dead', { 'Content-Type': 'application/json' }, RPCBODY('req-a')));
        assertRpcError(resp, 502, RPC.BAD_GATEWAY, 'req-a');
        resp = await rawRequest(port, req('GET', '/dead', { Accept: 'text/event-stream' }));
        assertRpcError(resp, 502, RPC.BAD_GATEWAY, null);
    }));

    test('upstream resets the connection -> 502 with the id', T(async () => {
        const mark = up.mark();
        const resp = await rawRequest(port, req('POST', '/reset', { 'Content-Type': 'application/json' }, RPCBODY(8)));
        assertRpcError(resp, 502, RPC.BAD_GATEWAY, 8);
        assert.ok(up.since(mark).length >= 1, 'the upstream did receive the request');
    }));

    test('upstream closes without answering, or answers garbage -> 502 with the id', T(async () => {
        let resp = await rawRequest(port, req('POST', '/hangup', { 'Content-Type': 'application/json' }, RPCBODY(10)));
        assertRpcError(resp, 502, RPC.BAD_GATEWAY, 10, 'hang-up');
        resp = await rawRequest(port, req('POST', '/garbage', { 'Content-Type': 'application/json' }, RPCBODY(11)));
        assertRpcError(resp, 502, RPC.BAD_GATEWAY, 11, 'garbage');
    }));

    test('upstream never answers within upstream_timeout (2s) -> 504 (-32004) with the id', T(async () => {
        const t0 = Date.now();
        const resp = await rawRequest(port, req('POST', '/slow', { 'Content-Type': 'application/json' }, RPCBODY(9)), { timeout: 8000 });
        const dt = Date.now() - t0;
        assertRpcError(resp, 504, RPC.GW_TIMEOUT, 9);
        assert.ok(dt >= 1800 && dt < 6000, `504 after about upstream_timeout (took ${dt} ms)`);
    }));

    test('the gateway still serves after all of the above', T(async () => {
        const resp = await rawRequest(port, req('POST', '/mcp', { 'Content-Type': 'application/json' }, RPCBODY(1)));
        assert.equal(resp.status, 200, resp.text);
        assert.equal(resp.json().url, '/mcp');
    }));
});
