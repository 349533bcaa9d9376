// forwarding.test.mjs -- what the upstream receives (method, mapped path and query, headers,
// body) and what the client gets back (status, headers, body in every framing), keep-alive and
// pipelining on one client connection.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { Upstream, json, chunked, closeDelimited } from './lib/upstream.mjs';
import { RawConn, rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';

let gw, up, up2, port;
const T = (fn) => showLogsOnFailure(() => gw, fn);

before(async () => {
    up = await Upstream.start();
    up2 = await Upstream.start({ keepAliveTimeout: 200 });
    [port] = await freePorts(1);
    gw = await startGateway({
        conf: baseConfig({
            listen: port,
            timeouts: { max_body_size: '1m' },
            routes: [
                ['/mcp', up.url('/mcp')],
                ['/mcp/special', up.url('/sp')],
                ['/other', up.url('')],
                ['/deep/a', up.url('/z/y')],
                ['/shortka', up2.url('/ka')],
            ],
        }),
    });
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        if (up2) await up2.stop();
        gw?.removeDir();
    }
});

/* Send one request, return [client response, upstream record]. */
async function via(bytes, opts) {
    const mark = up.mark();
    const resp = await rawRequest(port, bytes, opts);
    const recs = up.since(mark);
    assert.equal(recs.length, 1, `upstream should see exactly one request, saw ${recs.map((r) => r.url)}; client got ${resp.status} ${resp.text}`);
    await recs[0].complete;
    return [resp, recs[0]];
}

describe('methods and path mapping', () => {
    test('POST, GET, DELETE are forwarded with the route prefix mapped and the query kept', T(async () => {
        const cases = [
            ['POST', '/mcp', '/mcp'],
            ['GET', '/mcp', '/mcp'],
            ['DELETE', '/mcp', '/mcp'],
            ['GET', '/mcp?x=1&y=%20a', '/mcp?x=1&y=%20a'],
            ['GET', '/mcp/sub/x', '/mcp/sub/x'],
            ['GET', '/mcp/special', '/sp'],
            ['POST', '/mcp/special/a?q=1', '/sp/a?q=1'],
            ['GET', '/mcp/specialx', '/mcp/specialx'],
            ['GET', '/other', '/other'],
            ['DELETE', '/other/x?k=v', '/other/x?k=v'],
            ['GET', '/deep/a/b', '/z/y/b'],
            ['GET', '/deep/a', '/z/y'],
        ];
        for (const [m, p, want] of cases) {
            const body = m === 'POST' ? '{"jsonrpc":"2.0","id":1,"method":"ping"}' : null;
            const [resp, rec] = await via(req(m, p, { 'Content-Type': 'application/json' }, body));
            assert.equal(resp.status, 200, `${m} ${p}: ${resp.text}`);
            assert.equal(rec.method, m, `${m} ${p}: method upstream`);
            assert.equal(rec.url, want, `${m} ${p}: upstream target`);
            if (body) assert.equal(rec.bodyText, body);
            // the client gets the upstream's answer
            assert.equal(resp.json().url, want);
        }
    }));
});

describe('request headers', () => {
    test('Authorization and hop-by-hop headers are dropped, X-Forwarded-* replaced, MCP headers kept', T(async () => {
        const body = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
        const [resp, rec] = await via(
            req(
                'POST',
                '/mcp',
                {
                    Host: 'gw.example:8443',
                    Authorization: 'Bearer secret-token-must-not-leak',
                    'Proxy-Authorization': 'Basic c2VjcmV0',
                    Connection: 'keep-alive, X-Hop-Named',
                    'Keep-Alive': 'timeout=5',
                    TE: 'trailers',
                    Upgrade: 'h2c',
                    'X-Hop-Named': 'drop me',
                    'X-Forwarded-For': '6.6.6.6',
                    'X-Forwarded-Proto': 'https',
                    'X-Forwarded-Host': 'evil.example',
                    'Mcp-Session-Id': 'sess-123',
                    'MCP-Protocol-Version': '2025-06-18',
                    'Last-Event-ID': 'ev-41',
                    'Mcp-Method': 'tools/list',
                    'Mcp-Name': 'echo',
                    'Mcp-Param-Foo': 'bar',
                    Accept: 'application/json, text/event-stream',
                    'Content-Type': 'application/json',
                    'X-Custom': 'kept',
                },
                body,
            ),
        );
        assert.equal(resp.status, 200, resp.text);
        const h = rec.headers;
        for (const gone of ['authorization', 'proxy-authorization', 'keep-alive', 'te', 'upgrade', 'x-hop-named']) {
            assert.ok(!(gone in h), `${gone} must not reach the upstream (got ${h[gone]})`);
        }
        assert.ok(!/secret-token/.test(rec.rawHeaders.join('\n')), 'the token appears nowhere upstream');
        if ('connection' in h) assert.doesNotMatch(h.connection, /x-hop-named/i, 'client Connection header not forwarded');
        const count = (n) => rec.rawHeaders.filter((v, i) => i % 2 === 0 && v.toLowerCase() === n).length;
        assert.equal(h['x-forwarded-for'], '127.0.0.1');
        assert.equal(count('x-forwarded-for'), 1);
        assert.equal(h['x-forwarded-proto'], 'http');
        assert.equal(count('x-forwarded-proto'), 1);
        assert.equal(h['x-forwarded-host'], 'gw.example:8443');
        assert.equal(count('x-forwarded-host'), 1);
        assert.equal(h.host, `127.0.0.1:${up.port}`, 'Host is the upstream host:port');
        assert.equal(h['mcp-session-id'], 'sess-123');
        assert.equal(h['mcp-protocol-version'], '2025-06-18');
        assert.equal(h['last-event-id'], 'ev-41');
        assert.equal(h['mcp-method'], 'tools/list');
        assert.equal(h['mcp-name'], 'echo');
        assert.equal(h['mcp-param-foo'], 'bar');
        assert.equal(h.accept, 'application/json, text/event-stream');
        assert.equal(h['content-type'], 'application/json');
        assert.equal(h['x-custom'], 'kept');
        assert.equal(h['content-length'], String(Buffer.byteLength(body)));
        assert.equal(rec.bodyText, body);
    }));

    test('a chunked client body arrives upstream with Content-Length and no Transfer-Encoding', T(async () => {
        const parts = ['{"jsonrpc":"2.0",', '"id":3,"method":"tools/call",', '"params":{"name":"echo","arguments":{"message":"h\u00e9llo"}}}'];
        const wire = parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';
        const [resp, rec] = await via(req('POST', '/mcp', { 'Transfer-Encoding': 'chunked', 'Content-Type': 'application/json' }, wire));
        assert.equal(resp.status, 200, resp.text);
        const whole = parts.join('');
        assert.equal(rec.bodyText, whole);
        assert.equal(rec.headers['content-length'], String(Buffer.byteLength(whole)));
        assert.ok(!('transfer-encoding' in rec.headers), `no Transfer-Encoding upstream (got ${rec.headers['transfer-encoding']})`);
    }));

    test('Expect: 100-continue: the gateway says 100 Continue, then the body is forwarded (without Expect)', T(async () => {
        const mark = up.mark();
        const body = '{"jsonrpc":"2.0","id":12,"method":"ping"}';
        const c = await RawConn.connect(port);
        try {
            await c.write(req('POST', '/mcp/expect', { 'Content-Type': 'application/json', 'Content-Length': String(body.length), Expect: '100-continue' }));
            const ok = await c._until(() => c.buf.toString('latin1').startsWith('HTTP/1.1 100 '), Date.now() + 3000);
            assert.ok(ok, `interim 100 Continue before the body (got ${JSON.stringify(c.buf.toString('latin1'))})`);
            await c.write(body);
            const r = await c.readResponse();
            assert.equal(r.status, 200, r.text);
        } finally {
            c.close();
        }
        const recs = up.since(mark);
        assert.equal(recs.length, 1);
        assert.equal(recs[0].bodyText, body);
        assert.ok(!('expect' in recs[0].headers), 'Expect is not forwarded');
    }));

    test('a body sent slowly in pieces (within client_timeout) is forwarded whole', T(async () => {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 13, method: 'x', params: { s: 'p'.repeat(3000) } });
        const pieces = [req('POST', '/mcp/slowbody', { 'Content-Type': 'application/json', 'Content-Length': String(body.length) })];
        for (let i = 0; i < body.length; i += 1000) pieces.push(body.slice(i, i + 1000));
        const [resp, rec] = await via(pieces, { gapMs: 100 });
        assert.equal(resp.status, 200);
        assert.equal(rec.bodyText, body);
    }));

    test('a large body (600 KiB) arrives byte for byte', T(async () => {
        const big = JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'x', params: { blob: crypto.randomBytes(450 * 1024).toString('base64') } });
        const [resp, rec] = await via(req('POST', '/mcp', { 'Content-Type': 'application/json' }, big), { timeout: 10000 });
        assert.equal(resp.status, 200);
        assert.equal(rec.body.length, Buffer.byteLength(big));
        assert.equal(crypto.createHash('sha256').update(rec.body).digest('hex'), crypto.createHash('sha256').update(big).digest('hex'));
    }));
});

describe('responses', () => {
    test('upstream status, headers and body are relayed unchanged (201, 400, 202, 404)', T(async () => {
        up.route('/mcp/r201', json(201, { ok: 1 }, { 'Mcp-Session-Id': 'sid-9', 'X-Up': 'yes' }));
        up.route('/mcp/r400', json(400, '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}'));
        up.route('/mcp/r404', json(404, '{"upstream":"not found"}'));
        up.route('/mcp/r202', (q, res) => {
            res.writeHead(202);
            res.end();
        });
        let [r] = await via(req('POST', '/mcp/r201', { 'Content-Type': 'application/json' }, '{}'));
        assert.equal(r.status, 201);
        assert.equal(r.headers['mcp-session-id'], 'sid-9');
        assert.equal(r.headers['x-up'], 'yes');
        assert.deepEqual(r.json(), { ok: 1 });
        [r] = await via(req('POST', '/mcp/r400', { 'Content-Type': 'application/json' }, '{}'));
        assert.equal(r.status, 400);
        assert.equal(r.text, '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}');
        [r] = await via(req('GET', '/mcp/r404'));
        assert.equal(r.status, 404, 'an upstream 404 is relayed, not replaced');
        assert.equal(r.text, '{"upstream":"not found"}');
        [r] = await via(req('POST', '/mcp/r202', { 'Content-Type': 'application/json' }, '{"jsonrpc":"2.0","method":"notifications/initialized"}'));
        assert.equal(r.status, 202);
        assert.equal(r.body.length, 0);
    }));

    test('chunked and close-delimited upstream bodies reach the client whole', T(async () => {
        up.route('/mcp/chunked', chunked(['{"part":', '"one",', '"two":2}']));
        up.route('/mcp/closed', closeDelimited(['{"close":', '"delimited"}']));
        let [r] = await via(req('GET', '/mcp/chunked'));
        assert.equal(r.status, 200);
        assert.deepEqual(r.json(), { part: 'one', two: 2 });
        [r] = await via(req('GET', '/mcp/closed'));
        assert.equal(r.status, 200);
        assert.deepEqual(r.json(), { close: 'delimited' });
    }));
});

describe('client keep-alive', () => {
    test('two requests one after the other on one connection both succeed', T(async () => {
        const mark = up.mark();
        const c = await RawConn.connect(port);
        try {
            await c.write(req('POST', '/mcp/one', { 'Content-Type': 'application/json' }, '{"n":1}'));
            const r1 = await c.readResponse();
            await c.write(req('GET', '/mcp/special/two'));
            const r2 = await c.readResponse();
            assert.equal(r1.status, 200);
            assert.equal(r1.json().url, '/mcp/one');
            assert.equal(r2.status, 200);
            assert.equal(r2.json().url, '/sp/two');
            assert.equal(c.closed, false, 'the connection stays open');
        } finally {
            c.close();
        }
        assert.deepEqual(up.since(mark).map((r) => r.url), ['/mcp/one', '/sp/two']);
    }));

    test('two pipelined requests in one write are answered in order', T(async () => {
        const c = await RawConn.connect(port);
        try {
            await c.write(req('POST', '/mcp/first', { 'Content-Type': 'application/json' }, '{"n":1}') + req('GET', '/mcp/second'));
            const r1 = await c.readResponse();
            const r2 = await c.readResponse();
            assert.equal(r1.status, 200);
            assert.equal(r1.json().url, '/mcp/first');
            assert.equal(r1.json().body, '{"n":1}');
            assert.equal(r2.status, 200);
            assert.equal(r2.json().url, '/mcp/second');
        } finally {
            c.close();
        }
    }));

    test('Connection: close is honoured: the gateway closes after the response', T(async () => {
        const c = await RawConn.connect(port);
        try {
            await c.write(req('GET', '/mcp/bye', { Connection: 'close' }));
            const r = await c.readResponse();
            assert.equal(r.status, 200);
            assert.ok(await c.waitClose(3000), 'connection closed by the gateway');
        } finally {
            c.close();
        }
    }));
});

describe('upstream connections', () => {
    test('an upstream that closes idle kept-alive connections: the next request still succeeds', T(async () => {
        const mark = up2.mark();
        for (let i = 0; i < 3; i++) {
            const r = await rawRequest(port, req('POST', `/shortka/${i}`, { 'Content-Type': 'application/json' }, `{"jsonrpc":"2.0","id":${i},"method":"ping"}`));
            assert.equal(r.status, 200, `request ${i} after the upstream closed its idle connection: ${r.status} ${r.text}`);
            assert.equal(r.json().url, `/ka/${i}`);
            await new Promise((res) => setTimeout(res, 400)); // > the upstream's 200 ms keep-alive timeout
        }
        assert.equal(up2.since(mark).length, 3, 'each request reached the upstream exactly once');
    }));

    test('consecutive requests reuse upstream connections (keep-alive pool)', T(async () => {
        const before = up.connections;
        for (let i = 0; i < 6; i++) {
            const r = await rawRequest(port, req('GET', `/mcp/pool/${i}`));
            assert.equal(r.status, 200);
        }
        // 2 workers: at most a few new upstream connections, not one per request
        assert.ok(up.connections - before <= 3, `${up.connections - before} new upstream connections for 6 requests`);
    }));
});
