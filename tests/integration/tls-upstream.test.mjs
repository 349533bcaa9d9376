// tls-upstream.test.mjs -- https upstreams: with upstream_ca_file naming the upstream's
// self-signed certificate (made at test time by openssl, SAN IP:127.0.0.1) requests are forwarded
// over TLS (bodies intact, SSE relayed event by event); without it (the system store) and with a
// trusted certificate for another name (SAN DNS:other.example) the handshake fails, the client
// gets 502 and the upstream's request handler never runs.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream, SseControl, echoJson } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { openStream } from './lib/sse.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline, sleep } from './lib/procs.mjs';

let dir, gw, port, good, other, certGood, certOther;
const T = (fn) => showLogsOnFailure(() => gw, fn);
const streams = [];

/* A self-signed P-256 certificate (its own CA) with subjectAltName <san>. */
function selfSigned(name, cn, san) {
    const cert = path.join(dir, `${name}.crt`);
    const key = path.join(dir, `${name}.key`);
    execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
            '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert],
        { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 },
    );
    return { cert, key };
}

/* A recording Upstream (lib/upstream.mjs) served over TLS with <c>; also counts finished
 * handshakes and handshake failures. */
async function startTlsUpstream(c) {
    const up = new Upstream();
    up.handshakes = 0;
    up.tlsErrors = [];
    up.server = https.createServer(
        { key: fs.readFileSync(c.key), cert: fs.readFileSync(c.cert), keepAliveTimeout: 30000 },
        (r, s) => up.onRequest(r, s),
    );
    up.server.on('secureConnection', (s) => {
        up.handshakes++;
        s.itestId = ++up.connections;
        up.sockets.add(s);
        s.on('close', () => up.sockets.delete(s));
    });
    up.server.on('connection', (s) => {
        up.sockets.add(s);
        s.on('close', () => up.sockets.delete(s));
    });
    up.server.on('tlsClientError', (e) => up.tlsErrors.push(e.code || e.message));
    await new Promise((resolve, reject) => {
        up.server.once('error', reject);
        up.server.listen(0, '127.0.0.1', resolve);
    });
    up.port = up.server.address().port;
    up.httpsUrl = (p) => `https://127.0.0.1:${up.port}${p}`;
    return up;
}

before(async () => {
    dir = makeTempDir('mcpgate-tls-upstream-');
    certGood = selfSigned('good', '127.0.0.1', 'IP:127.0.0.1');
    certOther = selfSigned('other', 'other.example', 'DNS:other.example');
    good = await startTlsUpstream(certGood);
    other = await startTlsUpstream(certOther);
    [port] = await freePorts(1);
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: port,
            extra: `
route /s { upstream ${good.httpsUrl('/mcp')}; upstream_ca_file ${certGood.cert}; }
route /nca { upstream ${good.httpsUrl('/mcp')}; }
route /o { upstream ${other.httpsUrl('/mcp')}; upstream_ca_file ${certOther.cert}; }
`,
        }),
    });
});

after(async () => {
    for (const s of streams) s.close();
    try {
        if (gw) await gw.stop();
    } finally {
        try {
            if (good) await good.stop();
        } finally {
            if (other) await other.stop();
            gw?.removeDir();
        }
    }
});

const POST_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };

describe('https upstream', () => {
    test('with upstream_ca_file: forwarded over TLS, 200, request and response bodies intact', T(async () => {
        const bigText = crypto.randomBytes(150 * 1024).toString('base64');
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: { bigText } } });
        good.route('/mcp', echoJson());
        const mark = good.mark();
        const r = await rawRequest(port, req('POST', '/s', POST_HEADERS, body), { timeout: 10000 });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        const seen = good.since(mark);
        assert.equal(seen.length, 1, 'one request reached the upstream');
        assert.equal(seen[0].url, '/mcp');
        assert.equal(seen[0].bodyText, body, 'request body intact upstream');
        const echoed = r.json();
        assert.equal(echoed.body, body, 'response body intact at the client');
        assert.ok(good.handshakes >= 1, 'a TLS handshake completed');
    }));

    test('with upstream_ca_file: an SSE response is relayed event by event', T(async () => {
        const ctl = new SseControl();
        good.route('/mcp', ctl.handler());
        const sp = openStream(`http://127.0.0.1:${port}/s`, {
            method: 'POST',
            headers: POST_HEADERS,
            body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'y' } }),
        });
        sp.catch(() => {});
        await deadline(ctl.opened, 5000, 'upstream to receive the SSE request');
        await ctl.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { n: 1 } }, { id: 'e1' });
        const s = await sp;
        streams.push(s);
        assert.equal(s.status, 200);
        assert.match(s.headers['content-type'], /^text\/event-stream/);
        for (let n = 1; n <= 3; n++) {
            if (ctl.sent < n) await ctl.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { n } }, { id: `e${n}` });
            await s.waitEvents(n, 3000);
            assert.equal(s.events.length, n, `event ${n} arrived before the next was written`);
            assert.equal(s.events[n - 1].json.params.n, n);
            assert.equal(s.events[n - 1].id, `e${n}`);
        }
        await ctl.send({ jsonrpc: '2.0', id: 2, result: { content: [] } }, { id: 'e4' });
        ctl.end();
        await s.waitEnd(3000);
        assert.equal(s.events.length, 4);
        assert.deepEqual(s.events[3].json, { jsonrpc: '2.0', id: 2, result: { content: [] } });
        good.route('/mcp', echoJson());
    }));

    test('without upstream_ca_file (system store): 502, TLS fails before any request', T(async () => {
        good.route('/mcp', echoJson());
        const mark = good.mark();
        const hs = good.handshakes;
        const errs = good.tlsErrors.length;
        const r = await rawRequest(port, req('POST', '/nca', POST_HEADERS, '{"jsonrpc":"2.0","id":3,"method":"ping"}'), { timeout: 10000 });
        assert.equal(r.status, 502, r.text);
        await sleep(100);
        assert.equal(good.since(mark).length, 0, "nothing reached the upstream's handler");
        assert.equal(good.handshakes, hs, 'no TLS handshake completed');
        assert.ok(good.tlsErrors.length > errs, `the upstream saw the handshake fail (${good.tlsErrors.slice(errs)})`);
    }));

    test('a trusted certificate for another name (SAN DNS:other.example): 502, nothing forwarded', T(async () => {
        other.route('/mcp', echoJson());
        const mark = other.mark();
        const hs = other.handshakes;
        const r = await rawRequest(port, req('POST', '/o', POST_HEADERS, '{"jsonrpc":"2.0","id":4,"method":"ping"}'), { timeout: 10000 });
        assert.equal(r.status, 502, r.text);
        await sleep(100);
        assert.equal(other.since(mark).length, 0, "nothing reached the upstream's handler");
        assert.equal(other.handshakes, hs, 'no TLS handshake completed');
    }));

    test('the good route still works after the failures', T(async () => {
        good.route('/mcp', echoJson());
        const r = await rawRequest(port, req('POST', '/s', POST_HEADERS, '{"jsonrpc":"2.0","id":5,"method":"ping"}'), { timeout: 10000 });
        assert.equal(r.status, 200, r.text);
    }));
});
