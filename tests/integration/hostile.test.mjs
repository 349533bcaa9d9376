// hostile.test.mjs -- hostile input against the gateway over raw sockets: request smuggling,
// CR/LF injection, oversized and slow requests, pipelining, odd request-target forms, Host and
// path tricks, opaque bodies, idle connection floods and hostile upstream responses. Each case
// checks the exact status of docs/http.md, the JSON-RPC error body, that the connection is closed
// after a framing error, that the recording upstream saw nothing (nor a smuggled second request),
// and that the gateway still serves afterwards; at the end it must exit 0 with no sanitizer report.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream, json, slow } from './lib/upstream.mjs';
import { RawConn, rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';
import { assertRpcError, RPC } from './lib/assert.mjs';

const MAX_HEADER = 4096;
const MAX_BODY = 512 * 1024;
const CLIENT_TIMEOUT_MS = 1000;

let gw, up, port;
const upErrors = []; // parse errors of the upstream's HTTP server: garbage the gateway sent
const T = (fn) => showLogsOnFailure(() => gw, fn);

/* Upstream handlers that write raw (hostile) response bytes and keep the socket open: the
 * gateway has to make its own decision, not just see an EOF. */
const rawResponse = (bytes) => (q) => {
    q.socket.write(bytes);
};

before(async () => {
    up = await Upstream.start();
    up.server.on('clientError', (err, sock) => {
        upErrors.push(`${err.code}: ${err.message}`);
        sock.destroy();
    });
    up.route('/mcp/sink', json(200, { ok: true }));
    up.route('/mcp/slow', slow(400));
    up.route('/bad/clte', rawResponse('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'));
    up.route('/bad/tecl', rawResponse('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n'));
    up.route('/bad/twocl', rawResponse('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} '));
    up.route('/bad/status', rawResponse('HTTP/1.1 2OO OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'));
    up.route('/bad/version', rawResponse('HTTP/2.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'));
    up.route('/bad/barelf', rawResponse('HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 2\n\n{}'));
    up.route('/bad/bighead', rawResponse(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Big: ${'b'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`));
    up.route('/bad/manyheaders', rawResponse(
        'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
            Array.from({ length: 150 }, (_, i) => `X-H${i}: v\r\n`).join('') +
            'Content-Length: 2\r\n\r\n{}',
    ));
    up.route('/bad/tetoken', rawResponse('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'));
    up.route('/bad/upgrade', rawResponse('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
    up.route('/bad/cont', rawResponse('HTTP/1.1 100 Continue\r\n\r\n'.repeat(2000) + 'HTTP/1.1 2OO\r\n\r\n'));
    // A valid 2-byte response followed at once by a second, unsolicited one on the same
    // connection: the second must never be taken as the answer to a later request.
    up.route('/bad/extra', rawResponse(
        'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' +
            'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n"POISONED"',
    ));
    [port] = await freePorts(1);
    gw = await startGateway({
        conf: baseConfig({
            listen: port,
            timeouts: {
                client_timeout: '1s',
                upstream_timeout: '2s',
                upstream_connect_timeout: '1s',
                max_body_size: '512k',
                max_header_size: '4k',
                drain_timeout: '2s',
            },
            routes: [
                ['/mcp', up.url('/mcp')],
                ['/bad', up.url('/bad')],
            ],
        }),
        drainMs: 2000,
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

/* After every case: the gateway process is alive and forwards a plain request. */
afterEach(async () => {
    if (!gw) return;
    assert.ok(gw.running, `gateway died; stderr:\n${gw.stderr.slice(-4096)}`);
    const resp = await rawRequest(port, req('GET', '/mcp/health', { Connection: 'close' }), { timeout: 3000 });
    assert.equal(resp.status, 200, `health request after the case: ${resp.status} ${resp.text}`);
    assert.equal(resp.json().url, '/mcp/health');
});

const SMUGGLED = 'GET /mcp/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Smuggled: yes\r\n\r\n';
const show = (b) => JSON.stringify(Buffer.from(b).toString('latin1').slice(0, 120));

/* Nothing reached the upstream since <mark>/<errMark>: no request (in particular no smuggled
 * one) and no bytes its HTTP parser refused. Waits a short bounded time first. */
async function upstreamSawNothing(mark, errMark, what) {
    await sleep(150);
    assert.deepEqual(
        up.since(mark).map((r) => `${r.method} ${r.url}`),
        [],
        `upstream must see nothing for ${what}`,
    );
    assert.deepEqual(upErrors.slice(errMark), [], `upstream must not receive unparsable bytes for ${what}`);
}

/* Send <bytes> (string, Buffer, or an array written 20 ms apart), expect exactly one gateway
 * error reply with <status>, then (unless keepOpen) the connection closed with nothing more
 * written, and the upstream untouched. */
async function refused(bytes, status, { code = RPC.INVALID, what, timeout = 3000, closes = true } = {}) {
    what = what || show([].concat(bytes)[0]);
    const mark = up.mark();
    const errMark = upErrors.length;
    const c = await RawConn.connect(port);
    let resp;
    try {
        const parts = [].concat(bytes);
        for (let i = 0; i < parts.length; i++) {
            // the gateway may refuse (and close) before everything was written
            await c.write(parts[i]).catch(() => {});
            if (i + 1 < parts.length) await sleep(20);
        }
        resp = await c.readResponse({ timeout });
        assertRpcError(resp, status, code, null, what);
        if (closes) {
            assert.match(resp.headers.connection || '', /close/i, `Connection: close on ${status}; ${what}`);
            assert.ok(await c.waitClose(3000), `connection must be closed after ${status}; ${what}`);
            assert.equal(c.buf.length, 0, `nothing after the error reply; ${what}; got ${show(c.buf)}`);
        }
    } finally {
        c.close();
    }
    await upstreamSawNothing(mark, errMark, what);
    return resp;
}

/* The attack followed by a would-be smuggled request in the same write. */
const smuggle = (attack, status = 400, opts = {}) => refused(attack + SMUGGLED, status, opts);

/* Send <bytes>, expect a 200 from the echo upstream; returns [resp, upstream record]. */
async function forwarded(bytes, { timeout = 5000, what } = {}) {
    const mark = up.mark();
    const errMark = upErrors.length;
    const resp = await rawRequest(port, bytes, { timeout });
    assert.equal(resp.status, 200, `${what || show(bytes)}: ${resp.status} ${resp.text.slice(0, 300)}`);
    await sleep(50);
    const recs = up.since(mark);
    assert.equal(recs.length, 1, `upstream saw exactly one request: ${recs.map((r) => r.url)}`);
    await recs[0].complete;
    assert.deepEqual(upErrors.slice(errMark), []);
    return [resp, recs[0]];
}

const POST = (path, headers, body) => req('POST', path, { 'Content-Type': 'application/json', ...headers }, body);

describe('request smuggling -> 400, closed, nothing (and no smuggled request) upstream', () => {
    test('CL.TE and TE.CL', T(async () => {
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n');
        // CL covering the smuggled request, TE ending before it
        const inner = `0\r\n\r\n${SMUGGLED}`;
        await refused(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${inner.length}\r\nTransfer-Encoding: chunked\r\n\r\n${inner}`, 400);
    }));

    test('duplicate Content-Length, equal and differing', T(async () => {
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}');
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nContent-Length: 0\r\n\r\n{}');
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}');
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2, 2\r\n\r\n{}');
    }));

    test('Transfer-Encoding spellings other than exactly "chunked"', T(async () => {
        const body = '2\r\n{}\r\n0\r\n\r\n';
        for (const te of ['xchunked', 'chunked, identity', 'identity, chunked', 'chunked, chunked', 'gzip, chunked', 'chunked;x', '', 'identity', '"chunked"']) {
            await smuggle(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: ${te}\r\n\r\n${body}`, 400, { what: `TE: ${JSON.stringify(te)}` });
        }
        await smuggle(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, 400, { what: 'two TE fields' });
    }));

    test('whitespace and control tricks around the field name and value', T(async () => {
        const body = '2\r\n{}\r\n0\r\n\r\n';
        const heads = [
            'Transfer-Encoding : chunked', // space before the colon
            'Transfer-Encoding\t: chunked', // tab before the colon
            'Transfer-Encoding:\x0bchunked', // vertical tab
            'Transfer-Encoding:\x0cchunked', // form feed
            'Transfer-Encoding: chunked\x0b',
            ' Transfer-Encoding: chunked', // leading space = obs-fold of the previous line
            'Content-Length : 2', // header name with trailing space (CL)
            'Transfer-Encoding: identity\r\n chunked', // obs-fold continuation
            'Transfer-Encoding:\r\n\tchunked', // obs-fold with tab
        ];
        for (const h of heads) {
            await smuggle(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n${h}\r\n\r\n${body}`, 400, { what: JSON.stringify(h) });
        }
    }));

    test('Transfer-Encoding in HTTP/1.0', T(async () => {
        await smuggle('POST /mcp HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
    }));

    test('bad chunk sizes: 0x10, +10, " 10", "10 ", -1, 17 hex digits', T(async () => {
        const data16 = 'x'.repeat(16);
        for (const size of ['0x10', '+10', ' 10', '10 ', '10 ;ext', '-1', 'g', '', ';ext']) {
            await smuggle(
                POST('/mcp', { 'Transfer-Encoding': 'chunked' }, `${size}\r\n${data16}\r\n0\r\n\r\n`),
                400,
                { what: `chunk size ${JSON.stringify(size)}` },
            );
        }
    }));

    test('17 hex digits with a small value (0x10 behind leading zeros) -> 400, not 413', T(async () => {
        // docs/http.md: "a 17th hex digit" is MG_CHUNKED_ERROR (400); the value 16 is far below
        // max_body_size, so it is not "a chunk size that would take the total past max_total".
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, `00000000000000010\r\n${'x'.repeat(16)}\r\n0\r\n\r\n`), 400, { what: 'chunk size 00000000000000010' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, `00000000000000000\r\n\r\n`), 400, { what: 'chunk size 00000000000000000' });
    }));

    test('chunk-size overflow (16 and 18 hex digits) -> 413 at once: the size passes max_body_size first', T(async () => {
        // docs/http.md: MG_CHUNKED_TOO_LARGE "as soon as a chunk size would take the total past
        // max_total", which happens before the 17th digit when max_body_size is set.
        for (const size of ['ffffffffffffffff', 'ffffffffffffffffff', '10000000000000000']) {
            const t0 = Date.now();
            await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, `${size}\r\nabc`), 413, { what: `chunk size ${size}` });
            assert.ok(Date.now() - t0 < CLIENT_TIMEOUT_MS, `413 before client_timeout (took ${Date.now() - t0} ms)`);
        }
    }));

    test('bad chunk extensions and trailers -> 400', T(async () => {
        const cases = [
            ['2;a\u0000b\r\n{}\r\n0\r\n\r\n', 'NUL in a chunk extension'],
            ['2;a\rb\r\n{}\r\n0\r\n\r\n', 'bare CR in a chunk extension'],
            [`2;${'e'.repeat(1100)}\r\n{}\r\n0\r\n\r\n`, 'chunk size line over 1024 bytes'],
            ['2\r\n{}\r\n0\r\nX-T: a\r\n b\r\n\r\n', 'obs-fold in the trailer'],
            ['2\r\n{}\r\n0\r\nX-T : a\r\n\r\n', 'space before the colon in a trailer'],
            ['2\r\n{}\r\n0\r\nX-T: a\u0000\r\n\r\n', 'NUL in a trailer'],
            ['2\r\n{}\r\n0\r\n' + 'X-T: a\r\n'.repeat(65) + '\r\n', '65 trailer fields'],
            ['2\r\n{}\r\n0\r\nX-T: ' + 't'.repeat(9000) + '\r\n\r\n', 'trailer section over 8192 bytes'],
        ];
        for (const [body, what] of cases) {
            await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, body), 400, { what });
        }
    }));

    test('Content-Length with leading zeros frames exactly; the excess is the next request', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            await c.write(POST('/mcp/lz', { 'Content-Length': '0002' }, '{}') + req('GET', '/mcp/lz2', { Connection: 'close' }));
            const r1 = await c.readResponse({ timeout: 3000 });
            const r2 = await c.readResponse({ timeout: 3000 });
            assert.deepEqual([r1.json().url, r2.json().url], ['/mcp/lz', '/mcp/lz2']);
            assert.equal(r1.json().body, '{}');
        } finally {
            c.close();
        }
        assert.deepEqual(up.since(mark).map((r) => r.url), ['/mcp/lz', '/mcp/lz2']);
    }));

    test('a body longer than its Content-Length: the excess is parsed as the next request', T(async () => {
        // "@GET" is not a token -> 400 and close; "XGET" is an unknown method -> 405.
        for (const [excess, status] of [['@GET', 400], ['XGET', 405]]) {
            const mark = up.mark();
            const c = await RawConn.connect(port);
            try {
                await c.write(POST('/mcp/short', { 'Content-Length': '2' }, `{}${excess} /mcp/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
                const r1 = await c.readResponse({ timeout: 3000 });
                assert.equal(r1.json().url, '/mcp/short');
                assert.equal(r1.json().body, '{}');
                const r2 = await c.readResponse({ timeout: 3000 });
                assertRpcError(r2, status, RPC.INVALID, null, `${excess} request line`);
                assert.ok(await c.waitClose(3000));
            } finally {
                c.close();
            }
            await sleep(100);
            assert.deepEqual(up.since(mark).map((r) => r.url), ['/mcp/short']);
        }
    }));

    test('chunk data longer than its size; missing CRLF after chunk data', T(async () => {
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\r\n{}XX\r\n0\r\n\r\n'), 400, { what: 'data longer than size' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\r\n{}0\r\n\r\n'), 400, { what: 'no CRLF after data' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\r\n{}\n0\r\n\r\n'), 400, { what: 'LF after data' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\r\n{}\r0\r\n\r\n'), 400, { what: 'CR after data' });
    }));

    test('bare LF and bare CR line ends', T(async () => {
        await smuggle('POST /mcp HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 2\n\n{}', 400, { what: 'bare LF head' });
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\nContent-Length: 2\r\n\r\n{}', 400, { what: 'one bare LF in head' });
        await smuggle('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\rContent-Length: 2\r\n\r\n{}', 400, { what: 'bare CR in head' });
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\n', 400, { what: 'LF-only empty line' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\n{}\n0\n\n'), 400, { what: 'bare LF chunked' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\r{}\r\n0\r\n\r\n'), 400, { what: 'bare CR after chunk size' });
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, '2\r\n{}\r\n0\r\n\n'), 400, { what: 'bare LF ending the chunked body' });
    }));

    test('Transfer-Encoding with HTAB OWS is chunked: re-framed with Content-Length, next request is separate', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            await c.write(
                'POST /mcp/te HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding:\tChunked \r\n\r\n' +
                    '1\r\n{\r\n1;ext=1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n' +
                    'GET /mcp/after HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
            );
            const r1 = await c.readResponse({ timeout: 3000 });
            const r2 = await c.readResponse({ timeout: 3000 });
            assert.equal(r1.status, 200);
            assert.equal(r2.status, 200);
            assert.equal(r1.json().url, '/mcp/te');
            assert.equal(r2.json().url, '/mcp/after');
        } finally {
            c.close();
        }
        const recs = up.since(mark);
        assert.deepEqual(recs.map((r) => r.url), ['/mcp/te', '/mcp/after']);
        await recs[0].complete;
        assert.equal(recs[0].bodyText, '{}');
        assert.equal(recs[0].headers['content-length'], '2');
        assert.equal(recs[0].headers['transfer-encoding'], undefined, 'client framing not forwarded');
        assert.equal(recs[0].headers['x-trailer'], undefined, 'trailers discarded');
    }));
});

describe('CR/LF/NUL injection', () => {
    test('bare CR, bare LF and NUL in header values -> 400', T(async () => {
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\rX-Injected: yes\r\n\r\n', 400, { what: 'bare CR in value' });
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\nX-Injected: yes\r\n\r\n', 400, { what: 'bare LF in value' });
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\u0000X-Injected: yes\r\n\r\n', 400, { what: 'NUL in value' });
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\u007fb\r\n\r\n', 400, { what: 'DEL in value' });
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-\u0000A: b\r\n\r\n', 400, { what: 'NUL in name' });
    }));

    test('a head trickled in one-byte pieces: forwarded whole when valid, 400 for a NUL or bare LF in it', T(async () => {
        // on_head parses an incomplete head again only when a new line has arrived:
        // the verdicts must be those of the head sent at once.
        const good = 'GET /mcp/sink HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: yes\r\n\r\n';
        const mark = up.mark();
        const resp = await rawRequest(port, good.split(''), { timeout: 8000, gapMs: 2 });
        assert.equal(resp.status, 200, resp.text);
        assert.equal(up.since(mark).length, 1);
        assert.equal(up.since(mark)[0].headers['x-trickle'], 'yes');
        await refused('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\u0000b\r\n\r\n'.split(''), 400, { what: 'NUL, trickled', timeout: 8000 });
        await refused('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\nX-B: b\r\n\r\n'.split(''), 400, { what: 'bare LF, trickled', timeout: 8000 });
    }));

    test('%0d%0a, %00 in the path -> 400, never a header upstream', T(async () => {
        await smuggle('GET /mcp/%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, { what: '%0d%0a in path' });
        await smuggle('GET /mcp/%0D%0AX-Injected:%20yes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, { what: '%0D%0A in path' });
        await smuggle('GET /mcp%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, { what: '/mcp%00' });
        await smuggle('GET /mcp/\u0000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, { what: 'raw NUL in target' });
        await smuggle('GET /mcp/a\u0085b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, { what: 'raw 0x85 in target' });
    }));

    test('%0d%0a in the query is forwarded still encoded, and never becomes a header', T(async () => {
        const [, rec] = await forwarded(req('GET', '/mcp/q?x=%0d%0aX-Injected:%20yes&y=%00'));
        assert.equal(rec.url, '/mcp/q?x=%0d%0aX-Injected:%20yes&y=%00');
        assert.equal(rec.headers['x-injected'], undefined);
    }));
});

describe('limits -> 431 / 413', () => {
    test('one header over max_header_size -> 431', T(async () => {
        await refused(req('GET', '/mcp', { 'X-Big': 'b'.repeat(MAX_HEADER + 100) }), 431);
    }));

    test('a head of exactly max_header_size is accepted, one byte more -> 431', T(async () => {
        const base = req('GET', '/mcp/exact', { 'X-Pad': '' });
        const pad = 'p'.repeat(MAX_HEADER - base.length);
        const exact = req('GET', '/mcp/exact', { 'X-Pad': pad });
        assert.equal(exact.length, MAX_HEADER);
        await forwarded(exact);
        await refused(req('GET', '/mcp/exact', { 'X-Pad': pad + 'p' }), 431);
    }));

    test('101 header fields (within max_header_size) -> 431', T(async () => {
        const many = {};
        for (let i = 0; i < 100; i++) many[`X-${i}`] = '1';
        const bytes = req('GET', '/mcp', many); // Host + 100 = 101 fields
        assert.ok(bytes.length < MAX_HEADER);
        await refused(bytes, 431);
        // exactly 100 fields is fine
        delete many['X-99'];
        await forwarded(req('GET', '/mcp/h100', many));
    }));

    test('request line longer than max_header_size -> 431 (the head limit covers it)', T(async () => {
        await refused(`GET /mcp/${'a'.repeat(MAX_HEADER + 10)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 431);
        // and without ever finishing the line
        await refused(`GET /mcp/${'a'.repeat(MAX_HEADER + 10)}`, 431, { what: 'unfinished long request line' });
    }));

    test('endless head without an empty line -> 431 at max_header_size, not later', T(async () => {
        const t0 = Date.now();
        await refused('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n' + 'X-A: 1\r\n'.repeat(90) + 'X-Pad: ' + 'p'.repeat(MAX_HEADER), 431);
        assert.ok(Date.now() - t0 < CLIENT_TIMEOUT_MS);
    }));

    test('Content-Length over max_body_size -> 413 before the body is sent', T(async () => {
        const t0 = Date.now();
        await smuggle(POST('/mcp', { 'Content-Length': String(MAX_BODY + 1) }), 413);
        assert.ok(Date.now() - t0 < CLIENT_TIMEOUT_MS * 0.8, `413 at once (took ${Date.now() - t0} ms)`);
        await refused(POST('/mcp', { 'Content-Length': '9223372036854775807' }), 413, { what: 'CL = INT64_MAX' });
        await refused(POST('/mcp', { 'Content-Length': '9223372036854775808' }), 400, { what: 'CL = INT64_MAX + 1' });
    }));

    test('chunked body over max_body_size -> 413 (one big chunk size; many small chunks)', T(async () => {
        await smuggle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }, `${(MAX_BODY + 1).toString(16)}\r\nabc`), 413, { what: 'one chunk of max+1' });
        const piece = 'a'.repeat(64 * 1024);
        const parts = [POST('/mcp', { 'Transfer-Encoding': 'chunked' })];
        for (let i = 0; i < 9; i++) parts.push(`${piece.length.toString(16)}\r\n${piece}\r\n`);
        parts.push('0\r\n\r\n');
        await refused(parts, 413, { what: '9 chunks of 64k' });
    }));

    test('body of exactly max_body_size is forwarded', T(async () => {
        const body = Buffer.alloc(MAX_BODY, 0x61);
        const [, rec] = await forwarded(Buffer.concat([Buffer.from(POST('/mcp/sink', { 'Content-Length': String(MAX_BODY) })), body]));
        assert.equal(rec.body.length, MAX_BODY);
    }));
});

describe('slow clients -> 408 at client_timeout, closed', () => {
    async function trickle(head, bytes, what) {
        const mark = up.mark();
        const errMark = upErrors.length;
        const c = await RawConn.connect(port);
        const t0 = Date.now();
        try {
            if (head) await c.write(head);
            for (let i = 0; i < bytes.length && i < 25 && !c.closed && c.buf.length === 0; i++) {
                await c.write(bytes[i]).catch(() => {});
                await sleep(200);
            }
            const resp = await c.readResponse({ timeout: 3000 });
            const dt = Date.now() - t0;
            assertRpcError(resp, 408, RPC.TIMEOUT408, null, what);
            assert.ok(dt >= CLIENT_TIMEOUT_MS - 100 && dt < CLIENT_TIMEOUT_MS + 1500, `${what}: 408 after about client_timeout (took ${dt} ms)`);
            assert.match(resp.headers.connection || '', /close/i);
            assert.ok(await c.waitClose(3000), `${what}: closed after 408`);
        } finally {
            c.close();
        }
        await upstreamSawNothing(mark, errMark, what);
    }

    test('slow headers: one byte every 200 ms', T(async () => {
        await trickle(null, 'GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n', 'slow head');
    }));

    test('slow body: one byte every 200 ms', T(async () => {
        await trickle(POST('/mcp', { 'Content-Length': '40' }), '{"jsonrpc":"2.0","id":1,"method":"ping"}', 'slow body');
    }));

    test('slow chunked body', T(async () => {
        await trickle(POST('/mcp', { 'Transfer-Encoding': 'chunked' }), '1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n', 'slow chunked body');
    }));
});

describe('pipelining', () => {
    test('two valid requests in one write: both answered in order, upstream sees both', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            await c.write(
                POST('/mcp/p1', {}, '{"jsonrpc":"2.0","id":1,"method":"ping"}') +
                    req('GET', '/mcp/p2') +
                    req('DELETE', '/mcp/p3', { Connection: 'close' }),
            );
            const rs = [];
            for (let i = 0; i < 3; i++) rs.push(await c.readResponse({ timeout: 3000, method: 'GET' }));
            assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
            assert.deepEqual(rs.map((r) => r.json().url), ['/mcp/p1', '/mcp/p2', '/mcp/p3']);
            assert.deepEqual(rs.map((r) => r.json().method), ['POST', 'GET', 'DELETE']);
            assert.ok(await c.waitClose(3000), 'closed after Connection: close');
        } finally {
            c.close();
        }
        assert.deepEqual(up.since(mark).map((r) => `${r.method} ${r.url}`), ['POST /mcp/p1', 'GET /mcp/p2', 'DELETE /mcp/p3']);
    }));

    test('a valid request then a malformed one: first answered, second 400, closed', T(async () => {
        const mark = up.mark();
        const errMark = upErrors.length;
        const c = await RawConn.connect(port);
        try {
            await c.write(
                req('GET', '/mcp/first') +
                    'GET /mcp/second HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil\r\n\r\n' +
                    SMUGGLED,
            );
            const r1 = await c.readResponse({ timeout: 3000 });
            assert.equal(r1.status, 200);
            assert.equal(r1.json().url, '/mcp/first');
            const r2 = await c.readResponse({ timeout: 3000 });
            assertRpcError(r2, 400, RPC.INVALID);
            assert.match(r2.headers.connection || '', /close/i);
            assert.ok(await c.waitClose(3000), 'closed after the 400');
            assert.equal(c.buf.length, 0, `no third response: ${show(c.buf)}`);
        } finally {
            c.close();
        }
        await sleep(150);
        assert.deepEqual(up.since(mark).map((r) => r.url), ['/mcp/first']);
        assert.deepEqual(upErrors.slice(errMark), []);
    }));

    test('nothing after a Connection: close request (or an HTTP/1.0 one) is processed', T(async () => {
        for (const first of [req('GET', '/mcp/last', { Connection: 'close' }), req('GET', '/mcp/last10', {}, null, 'HTTP/1.0')]) {
            const mark = up.mark();
            const c = await RawConn.connect(port);
            try {
                await c.write(first + SMUGGLED);
                const r1 = await c.readResponse({ timeout: 3000 });
                assert.equal(r1.status, 200);
                assert.ok(await c.waitClose(3000), 'closed after the response');
                assert.equal(c.buf.length, 0, `no second response: ${show(c.buf)}`);
            } finally {
                c.close();
            }
            await sleep(150);
            assert.equal(up.since(mark).length, 1, `upstream saw ${up.since(mark).map((r) => r.url)}`);
        }
    }));

    test('200 pipelined requests in one write are answered in order', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        const n = 200;
        try {
            let all = '';
            for (let i = 0; i < n; i++) all += req('GET', `/mcp/pipe${i}`, i === n - 1 ? { Connection: 'close' } : {});
            await c.write(all);
            for (let i = 0; i < n; i++) {
                const r = await c.readResponse({ timeout: 5000 });
                assert.equal(r.json().url, `/mcp/pipe${i}`);
            }
            assert.ok(await c.waitClose(3000));
        } finally {
            c.close();
        }
        assert.equal(up.since(mark).length, n);
    }));

    test('a request written one byte per write (head and chunked body) is reassembled', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        c.sock.setNoDelay(true);
        try {
            const bytes = POST('/mcp/bytewise', { 'Transfer-Encoding': 'chunked', Connection: 'close' }, '1;a=b\r\n{\r\n3\r\n"a"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n');
            for (let i = 0; i < bytes.length && i < 400; i++) {
                await c.write(bytes[i]);
                if (i % 8 === 0) await sleep(1);
            }
            const r = await c.readResponse({ timeout: 3000 });
            assert.equal(r.status, 200);
            assert.equal(r.json().body, '{"a":1}');
        } finally {
            c.close();
        }
        assert.equal(up.since(mark).length, 1);
    }));

    test('a pipelined flood behind a slow exchange: bounded, first answered, garbage -> 400', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            await c.write(req('GET', '/mcp/slow'));
            const junk = Buffer.alloc(2 * 1024 * 1024, 0x41); // "AAAA..." : one endless method token
            const w = c.write(junk).catch(() => {});
            const r1 = await c.readResponse({ timeout: 4000 });
            assert.equal(r1.status, 200);
            assert.equal(r1.json().url, '/mcp/slow');
            const r2 = await c.readResponse({ timeout: 4000 });
            // a token with no end: the head limit (max_header_size) decides
            assertRpcError(r2, 431, RPC.INVALID, null, 'the junk after it');
            assert.ok(await c.waitClose(3000));
            await w;
        } finally {
            c.close();
        }
        assert.equal(up.since(mark).length, 1);
    }));

    test('h2c / websocket upgrade requests are not forwarded as upgrades', T(async () => {
        const [, rec] = await forwarded(req('GET', '/mcp/h2c', {
            Connection: 'Upgrade, HTTP2-Settings',
            Upgrade: 'h2c',
            'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA',
            TE: 'trailers',
            'Keep-Alive': 'timeout=5',
            'Proxy-Connection': 'keep-alive',
        }));
        for (const h of ['upgrade', 'http2-settings', 'te', 'keep-alive']) assert.equal(rec.headers[h], undefined, `${h} is hop-by-hop`);
        assert.doesNotMatch(rec.headers.connection || '', /upgrade/i);
    }));

    // Not a contract (docs/http.md says nothing about half-close): the gateway treats a client
    // EOF as "client gone" and cancels the exchange, as nginx does without
    // proxy_ignore_client_abort. Checked here: an answer, if any, is whole; the gateway survives.
    test('a client that half-closes after its request: whole answer or none, gateway unharmed', T(async () => {
        const net = await import('node:net');
        const mark = up.mark();
        const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        const got = await new Promise((resolve) => {
            let buf = '';
            const t = setTimeout(() => { sock.destroy(); resolve(buf); }, 3000);
            sock.on('connect', () => sock.end(req('GET', '/mcp/halfclose')));
            sock.on('data', (d) => (buf += d.toString('latin1')));
            sock.on('end', () => { clearTimeout(t); sock.destroy(); resolve(buf); });
            sock.on('error', () => { clearTimeout(t); resolve(buf); });
        });
        assert.ok(got === '' || /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n\{[\s\S]*\}$/.test(got), `after a half-close, got ${show(got)}`);
        assert.ok(up.since(mark).length <= 1);
    }));

    test('a body-carrying GET does not hide a request inside its body', T(async () => {
        const body = SMUGGLED;
        const [resp, rec] = await forwarded(req('GET', '/mcp/withbody', { 'Content-Length': String(body.length), Connection: 'close' }, body));
        assert.equal(resp.json().url, '/mcp/withbody');
        assert.equal(rec.bodyText, body, 'the body is forwarded as a body');
    }));
});

describe('Expect and leading empty lines', () => {
    test('Expect other than 100-continue -> 400; 100-continue over the limit -> 413 without 100', T(async () => {
        await smuggle(POST('/mcp', { Expect: '200-ok', 'Content-Length': '2' }, '{}'), 400);
        await smuggle(POST('/mcp', { Expect: '100-continue, foo', 'Content-Length': '2' }, '{}'), 400);
        const resp = await refused(POST('/mcp', { Expect: '100-continue', 'Content-Length': String(MAX_BODY + 1) }), 413);
        assert.equal(resp.status, 413);
    }));

    test('Expect: 100-continue within the limit -> 100 then the answer; Expect not forwarded', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            await c.write(POST('/mcp/expect', { Expect: '100-Continue', 'Content-Length': '2' }));
            const deadline = Date.now() + 2000;
            while (!c.buf.includes('\r\n\r\n') && Date.now() < deadline && !c.closed) await sleep(10);
            assert.match(c.buf.toString('latin1'), /^HTTP\/1\.1 100 [^\r]*\r\n\r\n$/, 'interim 100 before the body');
            await c.write('{}');
            const r = await c.readResponse({ timeout: 3000 });
            assert.equal(r.status, 200);
        } finally {
            c.close();
        }
        const recs = up.since(mark);
        assert.equal(recs.length, 1);
        assert.equal(recs[0].headers.expect, undefined);
    }));

    test('up to four empty lines before the request line are skipped, five -> 400', T(async () => {
        const [resp] = await forwarded('\r\n\r\n\r\n\r\n' + req('GET', '/mcp/blank4'));
        assert.equal(resp.json().url, '/mcp/blank4');
        await smuggle('\r\n'.repeat(5) + req('GET', '/mcp/blank5'), 400);
        await smuggle('\n' + req('GET', '/mcp/blanklf'), 400, { what: 'bare LF before the request line' });
    }));
});

describe('request-target forms and versions', () => {
    test('absolute-form -> 400', T(async () => {
        await smuggle('GET http://evil/mcp HTTP/1.1\r\nHost: evil\r\n\r\n');
        await smuggle('GET http://127.0.0.1/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    }));

    test('CONNECT authority-form -> 400', T(async () => {
        await smuggle('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
        await smuggle('CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n');
    }));

    test('OPTIONS * (asterisk-form) -> 400; OPTIONS /mcp without Origin -> 204 with Allow', T(async () => {
        await smuggle('OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        const mark = up.mark();
        const resp = await rawRequest(port, req('OPTIONS', '/mcp'));
        assert.equal(resp.status, 204);
        assert.equal(resp.headers.allow, 'GET, POST, DELETE, OPTIONS');
        assert.equal(up.since(mark).length, 0);
    }));

    test('HTTP/0.9 request line -> 400 with an HTTP/1.1 status line', T(async () => {
        const resp = await refused('GET /mcp\r\n', 400, { what: 'HTTP/0.9 (no empty line)' });
        assert.equal(resp.version, '1.1');
        await refused('GET /mcp\r\n\r\n', 400, { what: 'HTTP/0.9 + empty line' });
    }));

    test('HTTP/2 prior-knowledge preface -> 505', T(async () => {
        const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
        const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
        await refused(Buffer.concat([Buffer.from(preface), settings]), 505, { what: 'h2 preface' });
    }));

    test('HTTP/1.2, HTTP/2.0, HTTP/9.9 -> 505; http/1.1, HTTP/1.10 -> 400', T(async () => {
        for (const v of ['HTTP/1.2', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/0.9']) {
            await smuggle(`GET /mcp ${v}\r\nHost: 127.0.0.1\r\n\r\n`, 505, { what: v });
        }
        for (const v of ['http/1.1', 'HTTP/1.10', 'HTTP/1.1 ', 'HTTP/1']) {
            await smuggle(`GET /mcp ${v}\r\nHost: 127.0.0.1\r\n\r\n`, 400, { what: JSON.stringify(v) });
        }
    }));

    test('TLS ClientHello on the plain port -> 400 at once', T(async () => {
        const hello = Buffer.from('16030100a5010000a10303', 'hex');
        const t0 = Date.now();
        await refused(Buffer.concat([hello, Buffer.alloc(64, 0)]), 400, { what: 'ClientHello' });
        assert.ok(Date.now() - t0 < CLIENT_TIMEOUT_MS);
    }));
});

describe('Host tricks', () => {
    test('two Host, empty Host, Host with @ / \\ % space, bad port, missing Host -> 400', T(async () => {
        const hosts = [
            'Host: 127.0.0.1\r\nHost: evil',
            'Host: 127.0.0.1\r\nhost: 127.0.0.1',
            'Host:',
            'Host: ',
            'Host: evil@127.0.0.1',
            'Host: 127.0.0.1/x',
            'Host: 127.0.0.1\\x',
            'Host: 127.0.0.1%2f',
            'Host: a b',
            'Host: 127.0.0.1:99999',
            'Host: 127.0.0.1:',
            'Host: [::1',
            'Accept: */*',
        ];
        for (const h of hosts) {
            await smuggle(`GET /mcp HTTP/1.1\r\n${h}\r\n\r\n`, 400, { what: JSON.stringify(h) });
        }
    }));

    test('X-Forwarded-For/-Host/-Proto and Forwarded from the client are replaced, not appended', T(async () => {
        const [, rec] = await forwarded(
            req('GET', '/mcp/xff', {
                Host: 'client.example:8443',
                'X-Forwarded-For': '6.6.6.6',
                'x-forwarded-for': '7.7.7.7',
                'X-Forwarded-Host': 'evil.example',
                'X-Forwarded-Proto': 'https',
                Forwarded: 'for=6.6.6.6;host=evil;proto=https',
                'X-Real-Secret': 'drop-me',
                Connection: 'X-Real-Secret',
            }),
        );
        const count = (n) => rec.rawHeaders.filter((v, i) => i % 2 === 0 && v.toLowerCase() === n).length;
        assert.equal(rec.headers['x-forwarded-for'], '127.0.0.1');
        assert.equal(count('x-forwarded-for'), 1);
        assert.equal(rec.headers['x-forwarded-host'], 'client.example:8443');
        assert.equal(count('x-forwarded-host'), 1);
        assert.equal(rec.headers['x-forwarded-proto'], 'http');
        assert.equal(count('x-forwarded-proto'), 1);
        assert.equal(rec.headers.forwarded, undefined);
        assert.equal(rec.headers['x-real-secret'], undefined, 'a field named in Connection is hop-by-hop');
        assert.equal(rec.headers.host, `127.0.0.1:${up.port}`);
        assert.equal(count('host'), 1);
    }));
});

describe('path normalisation', () => {
    test('dot segments, encoded slash/backslash/NUL, //, backslash, fragment, bad escapes -> 400', T(async () => {
        const paths = [
            '/mcp/../x', '/mcp/..', '/mcp/%2e%2e/x', '/mcp/%2E%2E/x', '/mcp/.%2e/x', '/mcp/%2e./x',
            '//mcp', '/mcp//x', '/mcp/%2f', '/mcp%2fx', '/mcp/%5c', '/mcp%00', '/mcp/./x', '/mcp/.', '/mcp/%2e/x',
            '/mcp\\x', '/mcp/..\\x', '/mcp#frag', '/mcp/x#', '/mcp/%', '/mcp/%2', '/mcp/%zz', '/mcp/%1f',
            '/mcp/%7f', '/mcp/<x>', '/mcp/"', '/mcp/{x}', '/mcp/a|b', '/mcp/a^b', '/mcp/a`b', '/mcp/[x]',
            '/mcp/../../etc/passwd', 'mcp', '*',
        ];
        for (const p of paths) {
            await smuggle(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, 400, { what: `GET ${p}` });
        }
    }));

    test('percent-encoded unreserved characters are decoded; other escapes kept, uppercased', T(async () => {
        const cases = [
            ['/mcp/%41bc', '/mcp/Abc'],
            ['/mcp/%7euser', '/mcp/~user'],
            ['/mcp/a%2db%5fc%2E', '/mcp/a-b_c.'],
            ['/mcp/a%2ab', '/mcp/a%2Ab'],
            ['/mcp/%c3%a9', '/mcp/%C3%A9'],
            ['/mcp/x?q=%41%2e', '/mcp/x?q=%41%2e'], // the query is passed as is
        ];
        for (const [sent, seen] of cases) {
            const [resp, rec] = await forwarded(req('GET', sent), { what: sent });
            assert.equal(rec.url, seen, `${sent} must reach the upstream as ${seen}`);
            assert.equal(resp.json().url, seen);
        }
    }));

    test('decoding happens before routing: /mcp%41 is /mcpA, which no route matches -> 404', T(async () => {
        await refused('GET /mcp%41 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 404, { code: RPC.NOT_FOUND, closes: false });
        // and %2e%2e cannot climb out of /bad into /mcp or vice versa
        await smuggle('GET /bad/%2e%2e/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400);
    }));
});

describe('Authorization', () => {
    test('two Authorization fields (any case) -> 400', T(async () => {
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n');
        await smuggle('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer a\r\n\r\n');
    }));

    test('Authorization, Proxy-Authorization and DPoP never reach the upstream', T(async () => {
        const [, rec] = await forwarded(
            req('POST', '/mcp/auth', {
                'Content-Type': 'application/json',
                Authorization: 'Bearer secret-token',
                'Proxy-Authorization': 'Basic c2VjcmV0',
                DPoP: 'proof',
            }, '{}'),
        );
        for (const n of ['authorization', 'proxy-authorization', 'dpop']) {
            assert.equal(rec.headers[n], undefined, `${n} must be stripped`);
        }
        assert.ok(!rec.rawHeaders.join('\n').includes('secret'), 'no secret anywhere upstream');
    }));
});

describe('opaque bytes on an unprotected route', () => {
    test('obs-text (invalid UTF-8) in a header value is forwarded byte for byte', T(async () => {
        const v = Buffer.from([0x61, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x62]);
        const bytes = Buffer.concat([
            Buffer.from('GET /mcp/utf HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bin: '),
            v,
            Buffer.from('\r\n\r\n'),
        ]);
        const [, rec] = await forwarded(bytes);
        const i = rec.rawHeaders.findIndex((h, j) => j % 2 === 0 && h.toLowerCase() === 'x-bin');
        assert.ok(i >= 0, 'X-Bin forwarded');
        assert.deepEqual(Buffer.from(rec.rawHeaders[i + 1], 'latin1'), v);
    }));

    test('invalid UTF-8 and NUL bytes in a body are forwarded unchanged (Content-Length and chunked)', T(async () => {
        const body = Buffer.from([0x7b, 0xff, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x0d, 0x0a, 0x7d]);
        let [, rec] = await forwarded(Buffer.concat([Buffer.from(POST('/mcp/sink', { 'Content-Length': String(body.length) })), body]));
        assert.deepEqual(rec.body, body);
        [, rec] = await forwarded(Buffer.concat([
            Buffer.from(POST('/mcp/sink', { 'Transfer-Encoding': 'chunked' })),
            Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n'),
        ]));
        assert.deepEqual(rec.body, body);
        assert.equal(rec.headers['content-length'], String(body.length));
    }));

    test('10000 nested [ is forwarded unchanged, in bounded time', T(async () => {
        const body = '['.repeat(10000);
        const t0 = Date.now();
        const [, rec] = await forwarded(POST('/mcp/sink', {}, body), { timeout: 5000 });
        assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
        assert.equal(rec.bodyText, body);
        const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
        const [, rec2] = await forwarded(POST('/mcp/sink', {}, deep), { timeout: 5000 });
        assert.equal(rec2.bodyText, deep);
    }));

    test('a 5000-element batch is forwarded unchanged, in bounded time', T(async () => {
        const batch = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })));
        assert.ok(batch.length < MAX_BODY);
        const t0 = Date.now();
        const [, rec] = await forwarded(POST('/mcp/sink', {}, batch), { timeout: 5000 });
        assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
        assert.equal(rec.bodyText, batch);
    }));
});

describe('connection floods', () => {
    test('200 silent connections do not block a request, and are closed at client_timeout', T(async () => {
        const conns = [];
        try {
            const t0 = Date.now();
            for (let i = 0; i < 200; i++) conns.push(await RawConn.connect(port, { timeout: 3000 }));
            const resp = await rawRequest(port, req('GET', '/mcp/flood'), { timeout: 3000 });
            assert.equal(resp.status, 200);
            assert.equal(resp.json().url, '/mcp/flood');
            const closed = await Promise.all(conns.map((c) => c.waitClose(Math.max(100, CLIENT_TIMEOUT_MS + 2500 - (Date.now() - t0)))));
            const open = closed.filter((x) => !x).length;
            assert.equal(open, 0, `${open} of 200 idle connections still open ${Date.now() - t0} ms after connecting`);
            const dt = Date.now() - t0;
            assert.ok(dt >= CLIENT_TIMEOUT_MS - 200, `closed too early (${dt} ms)`);
            for (const c of conns) {
                const got = c.buf.toString('latin1');
                assert.ok(got === '' || /^HTTP\/1\.1 408 /.test(got), `an idle connection got ${show(got)}`);
            }
        } finally {
            for (const c of conns) c.close();
        }
    }));
});

describe('hostile upstream responses -> 502, gateway alive', () => {
    const cases = [
        ['/bad/clte', 'Content-Length and Transfer-Encoding'],
        ['/bad/tecl', 'Transfer-Encoding and Content-Length'],
        ['/bad/twocl', 'two differing Content-Length'],
        ['/bad/status', 'bad status line'],
        ['/bad/version', 'HTTP/2.0 status line'],
        ['/bad/barelf', 'bare LF line ends'],
        ['/bad/bighead', '70k header block'],
        ['/bad/manyheaders', '150 header fields'],
        ['/bad/tetoken', 'Transfer-Encoding: xchunked'],
        ['/bad/upgrade', '101 Switching Protocols'],
        ['/bad/cont', 'a flood of 100 Continue then garbage'],
    ];
    for (const [p, what] of cases) {
        test(`${what} -> 502 (-32002) echoing the id`, T(async () => {
            const mark = up.mark();
            const resp = await rawRequest(port, POST(p, {}, '{"jsonrpc":"2.0","id":42,"method":"ping"}'), { timeout: 4000 });
            assertRpcError(resp, 502, RPC.BAD_GATEWAY, 42, what);
            assert.ok(up.since(mark).length >= 1, 'the upstream did get the request');
        }));
    }

    test('an unsolicited second response after a complete one is never delivered to a later request', T(async () => {
        const resp = await rawRequest(port, POST('/bad/extra', {}, '{}'), { timeout: 3000 });
        assert.equal(resp.status, 200);
        assert.equal(resp.text, '{}');
        await sleep(100);
        for (let i = 0; i < 6; i++) {
            const r = await rawRequest(port, req('GET', `/mcp/follow${i}`), { timeout: 3000 });
            assert.ok(!r.text.includes('POISONED'), `request ${i} got the poisoned response: ${r.status} ${r.text}`);
        }
        // the same on one kept-alive client connection
        const c = await RawConn.connect(port);
        try {
            await c.write(POST('/bad/extra', {}, '{}'));
            const r1 = await c.readResponse({ timeout: 3000 });
            assert.equal(r1.text, '{}');
            await c.write(req('GET', '/mcp/after-extra'));
            const r2 = await c.readResponse({ timeout: 3000 });
            assert.equal(r2.status, 200);
            assert.equal(r2.json().url, '/mcp/after-extra');
        } finally {
            c.close();
        }
    }));
});
