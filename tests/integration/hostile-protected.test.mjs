// hostile-protected.test.mjs -- hostile JSON-RPC bodies on a protected route, sent with a valid
// token (so they get past authentication and reach the body parser): invalid JSON, invalid UTF-8
// inside strings, nesting far beyond MG_RPC_MAX_DEPTH, and batches beyond MG_RPC_MAX_BATCH
// (docs/mcp.md). Each is answered 400 with a JSON-RPC error (id null) and the upstream sees
// nothing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { sleep } from './lib/procs.mjs';
import { assertRpcError, RPC } from './lib/assert.mjs';
import { keygen, writeJwks, mint } from './lib/tokens.mjs';

const ISS = 'https://issuer.hostile-protected.test';
const PARSE = -32700;
const MAX_BATCH = 100; // MG_RPC_MAX_BATCH

let dir, up, gw, port, key, token;
const T = (fn) => showLogsOnFailure(() => gw, fn);
const resource = () => `http://127.0.0.1:${port}/mcp`;

before(async () => {
    dir = makeTempDir('mcpgate-hostile-protected-');
    up = await Upstream.start();
    [port] = await freePorts(1);
    key = keygen(dir, 'ES256', 'hp-es-1');
    writeJwks(path.join(dir, 'iss.jwks.json'), [key]);
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: port,
            extra: `
max_body_size 1m;
issuer ${ISS} { jwks_file ${path.join(dir, 'iss.jwks.json')}; }
route /mcp {
    upstream ${up.url('/mcp')};
    resource http://127.0.0.1:${port}/mcp;
    issuer ${ISS};
}
`,
        }),
    });
    token = mint(key, { iss: ISS, aud: resource(), sub: 'mallory', scope: 'mcp:tools' });
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        if (up) await up.stop();
        gw?.removeDir();
    }
});

/* POST <body> (string or Buffer, sent byte for byte) to /mcp with a valid token. */
function post(body, extra = {}) {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const head = req('POST', '/mcp', {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        Authorization: `Bearer ${token}`,
        'MCP-Protocol-Version': '2025-03-26',
        'Content-Length': bytes.length,
        ...extra,
    });
    return rawRequest(port, Buffer.concat([Buffer.from(head, 'latin1'), bytes]), { timeout: 10000, method: 'POST' });
}

/* Run <send>, check the refusal, and that nothing reached the upstream (given a moment in case
 * the gateway forwarded it anyway). */
async function refusedUnseen(send, status, code, what) {
    const mark = up.mark();
    const r = await send();
    const j = assertRpcError(r, status, code, null, what);
    await sleep(50);
    assert.deepEqual(up.since(mark).map((x) => x.bodyText), [], `${what}: the upstream saw nothing`);
    return j;
}

describe('hostile JSON on a protected route (valid token)', () => {
    test('the token and route work: a valid call is forwarded', T(async () => {
        const mark = up.mark();
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
        const r = await post(body);
        assert.equal(r.status, 200, r.text);
        assert.equal(up.since(mark).length, 1);
        assert.equal(up.since(mark)[0].bodyText, body);
    }));

    test('invalid JSON -> 400 -32700, id null, not forwarded', T(async () => {
        const bad = [
            '{',
            '{"jsonrpc":"2.0","id":1,"method":"ping"',
            'not json',
            '{"jsonrpc":"2.0","id":1,"method":"ping"} trailing',
            '{"jsonrpc":"2.0","id":1,"method":"ping",}',
            "{'jsonrpc':'2.0'}",
            '{"jsonrpc":"2.0","id":1,"method":"ping","id":2}', // duplicate key
            '{"jsonrpc":"2.0","id":1,"method":"p\\u0000ing"}', // NUL in a string
            '{"jsonrpc":"2.0","id":1,"method":"\\ud800"}', // lone surrogate escape
            '[',
            '\u00a0{}',
            '',
        ];
        for (const b of bad) await refusedUnseen(() => post(b), 400, PARSE, `body ${JSON.stringify(b)}`);
    }));

    test('invalid UTF-8 inside a JSON string -> 400 -32700, not forwarded', T(async () => {
        const pre = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"');
        const post_ = Buffer.from('"}}');
        const seqs = {
            'lone 0xff': [0xff],
            'bare continuation byte': [0x80],
            'truncated 2-byte sequence': [0xc3, 0x28],
            'overlong "/"': [0xc0, 0xaf],
            'UTF-8 encoded surrogate': [0xed, 0xa0, 0x80],
            'above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
            'truncated 4-byte sequence at the end of the string': [0xf0, 0x9f, 0x98],
        };
        for (const [what, bytes] of Object.entries(seqs)) {
            const body = Buffer.concat([pre, Buffer.from('ok'), Buffer.from(bytes), post_]);
            await refusedUnseen(() => post(body), 400, PARSE, what);
        }
    }));

    test('a body the upstream could decode differently (charset, Content-Encoding) -> 415 -32600, not forwarded', T(async () => {
        // Under UTF-7 "+ACIAfQAsACIAbgBhAG0AZQAiADoAIgBhAGQAbQBpAG4AIgAsACIAeQAiADoAewAiAHoAIgA6ACI-"
        // decodes to "},"name":"admin","y":{"z":": a stack that honours the charset
        // (raw-body + iconv-lite) reads params.name "admin" where the gateway reads "echo".
        const utf7 = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":' +
            '{"x":"+ACIAfQAsACIAbgBhAG0AZQAiADoAIgBhAGQAbQBpAG4AIgAsACIAeQAiADoAewAiAHoAIgA6ACI-"}}}';
        const cases = [
            [{ 'Content-Type': 'application/json; charset=utf-7' }, 'charset=utf-7'],
            [{ 'Content-Type': 'application/json; Charset="UTF-7"' }, 'quoted UTF-7'],
            [{ 'Content-Type': 'application/json; charset=utf-16le' }, 'utf-16le'],
            [{ 'Content-Encoding': 'gzip' }, 'Content-Encoding gzip'],
            [{ 'Content-Encoding': 'identity, deflate' }, 'Content-Encoding deflate'],
        ];
        for (const [h, what] of cases) await refusedUnseen(() => post(utf7, h), 415, RPC.INVALID, what);
        // UTF-8 spelled any way is fine, and so is identity.
        for (const ct of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8']) {
            const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }), { 'Content-Type': ct, 'Content-Encoding': 'identity' });
            assert.equal(r.status, 200, `${ct}: ${r.text}`);
        }
    }));

    test('a raw NUL byte after a number -> 400 -32700 (jansson alone skipped it), not forwarded', T(async () => {
        const body = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","method":"ping","id":1'), Buffer.from([0]), Buffer.from('}')]);
        await refusedUnseen(() => post(body), 400, PARSE, 'NUL after a number');
    }));

    test('nesting far beyond the cap -> 400 -32700, not forwarded (no stack blow-up)', T(async () => {
        const deep = [
            ['10000 unclosed [', '['.repeat(10000)],
            ['10000 balanced []', '['.repeat(10000) + ']'.repeat(10000)],
            ['10000 nested objects in params', '{"jsonrpc":"2.0","id":1,"method":"ping","params":' + '{"a":'.repeat(10000) + '1' + '}'.repeat(10000) + '}'],
            ['200000 unclosed [', '['.repeat(200000)],
        ];
        for (const [what, b] of deep) await refusedUnseen(() => post(b), 400, PARSE, what);
        // the gateway is still fine
        const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'ping' }));
        assert.equal(r.status, 200);
    }));

    test(`a batch of ${MAX_BATCH} is forwarded; ${MAX_BATCH + 1} and 5000 -> 400 -32600 "Batch too large"`, T(async () => {
        const batch = (n) => `[${Array.from({ length: n }, (_, i) => JSON.stringify({ jsonrpc: '2.0', id: i + 1, method: 'ping' })).join(',')}]`;
        const mark = up.mark();
        const ok = await post(batch(MAX_BATCH));
        assert.equal(ok.status, 200, ok.text);
        assert.equal(up.since(mark).length, 1, 'the largest allowed batch is forwarded');
        assert.equal(up.since(mark)[0].bodyText, batch(MAX_BATCH));

        for (const n of [MAX_BATCH + 1, 5000]) {
            const body = batch(n);
            assert.ok(body.length < 1024 * 1024, 'within max_body_size');
            const j = await refusedUnseen(() => post(body), 400, RPC.INVALID, `batch of ${n}`);
            assert.match(j.error.message, /batch too large/i, 'a message that says what is wrong');
        }
        // 5000 notifications (no ids): same answer
        const notes = `[${Array.from({ length: 5000 }, () => '{"jsonrpc":"2.0","method":"notifications/initialized"}').join(',')}]`;
        await refusedUnseen(() => post(notes), 400, RPC.INVALID, 'batch of 5000 notifications');
        // the same array under 2024-11-05 too
        await refusedUnseen(() => post(batch(5000), { 'MCP-Protocol-Version': '2024-11-05' }), 400, RPC.INVALID, 'batch of 5000 under 2024-11-05');
    }));
});
