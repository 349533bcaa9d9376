// mcp-session.test.mjs -- a whole MCP Streamable HTTP session through the gateway in front of the
// real @modelcontextprotocol/server-everything, with plain HTTP requests: initialize, initialized,
// tools/list, tools/call (echo, and a long-running call whose progress notifications must arrive
// as separate events before the result), a GET stream receiving server notifications, DELETE.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { startEverything } from './lib/everything.mjs';
import { openStream, request } from './lib/sse.mjs';
import { freePorts } from './lib/ports.mjs';

let gw, ev, port, sid;
const T = (fn) =>
    showLogsOnFailure(() => gw, async (t) => {
        try {
            await fn(t);
        } catch (e) {
            process.stderr.write(`\n--- server-everything stderr ---\n${ev?.stderr.slice(-4096)}\n`);
            throw e;
        }
    });
const MCP = () => `http://127.0.0.1:${port}/mcp`;
const PV = '2025-06-18';
const streams = [];

before(async () => {
    ev = await startEverything();
    [port] = await freePorts(1);
    gw = await startGateway({
        conf: baseConfig({ listen: port, timeouts: { upstream_timeout: '10s' }, routes: [['/mcp', ev.url('/mcp')]] }),
    });
});

after(async () => {
    for (const s of streams) s.close();
    try {
        if (gw) await gw.stop();
    } finally {
        if (ev) await ev.stop();
        gw?.removeDir();
    }
});

function headers(extra = {}) {
    const h = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...extra };
    if (sid) {
        h['Mcp-Session-Id'] = sid;
        h['MCP-Protocol-Version'] = PV;
    }
    return h;
}

/* POST one JSON-RPC message; resolves the response with its SSE events parsed. */
function post(msg, opts = {}) {
    return request(MCP(), { method: 'POST', headers: headers(), body: JSON.stringify(msg), ...opts });
}

/* The JSON-RPC response (event with our id) among the SSE events. */
function result(resp, id) {
    assert.equal(resp.status, 200, `status; body ${resp.text}`);
    assert.match(resp.headers['content-type'], /^text\/event-stream/);
    const e = resp.events.find((x) => x.json && x.json.id === id);
    assert.ok(e, `a response with id ${id} among ${resp.text}`);
    assert.ok(!e.json.error, `no error: ${e.data}`);
    return e.json.result;
}

describe('MCP session through the gateway (server-everything)', () => {
    test('initialize returns a session id', T(async () => {
        const r = await post({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: { protocolVersion: PV, capabilities: {}, clientInfo: { name: 'mcpgate-itest', version: '0' } },
        });
        const res = result(r, 1);
        assert.equal(res.serverInfo.name, 'mcp-servers/everything');
        assert.equal(res.protocolVersion, PV);
        sid = r.headers['mcp-session-id'];
        assert.match(sid || '', /^[0-9a-f-]{36}$/, 'Mcp-Session-Id header relayed');
    }));

    test('notifications/initialized -> 202', T(async () => {
        assert.ok(sid, 'needs the session from initialize');
        const r = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
        assert.equal(r.status, 202, r.text);
    }));

    test('tools/list lists the server tools', T(async () => {
        const res = result(await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), 2);
        const names = res.tools.map((t) => t.name);
        for (const n of ['echo', 'get-sum', 'trigger-long-running-operation', 'toggle-simulated-logging']) {
            assert.ok(names.includes(n), `${n} in ${names}`);
        }
    }));

    test('tools/call echo', T(async () => {
        const res = result(
            await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'through the gateway' } } }),
            3,
        );
        assert.deepEqual(res.content, [{ type: 'text', text: 'Echo: through the gateway' }]);
    }));

    test('long-running tool: 3 progress events arrive one by one before the result', T(async () => {
        const t0 = Date.now();
        const s = await openStream(MCP(), {
            method: 'POST',
            headers: headers(),
            body: JSON.stringify({
                jsonrpc: '2.0',
                id: 4,
                method: 'tools/call',
                params: { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 3 }, _meta: { progressToken: 'p1' } },
            }),
            timeout: 10000,
        });
        streams.push(s);
        assert.equal(s.status, 200);
        // the first progress event must be visible to the client while the call is still running
        await s.waitEvents(1, 5000);
        const firstAt = Date.now();
        assert.equal(s.events[0].json.method, 'notifications/progress', `first event: ${s.events[0].data}`);
        assert.ok(!s.events.some((e) => e.json?.id === 4), 'the result has not arrived together with the first progress event');
        await s.until((x) => x.events.some((e) => e.json?.id === 4), 10000, 'the result');
        await s.waitEnd(5000);
        const progress = s.events.filter((e) => e.json?.method === 'notifications/progress');
        const resultEv = s.events.find((e) => e.json?.id === 4);
        assert.deepEqual(progress.map((e) => e.json.params.progress), [1, 2, 3]);
        assert.ok(progress.every((e) => e.json.params.progressToken === 'p1'));
        assert.equal(s.events.indexOf(resultEv), s.events.length - 1, 'the result comes last');
        // arrival times: the server emits a step every ~667 ms
        assert.ok(progress[1].at - progress[0].at >= 300, `progress 1 -> 2 gap ${progress[1].at - progress[0].at} ms`);
        assert.ok(progress[2].at - progress[1].at >= 300, `progress 2 -> 3 gap ${progress[2].at - progress[1].at} ms`);
        assert.ok(resultEv.at - firstAt >= 800, `result ${resultEv.at - firstAt} ms after the first progress event`);
        assert.ok(resultEv.at - t0 >= 1800, 'the operation took its 2 s');
        assert.match(resultEv.json.result.content[0].text, /Long running operation completed/i);
    }));

    test('GET stream receives a server notification (simulated logging)', T(async () => {
        const g = await openStream(MCP(), {
            headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': PV },
        });
        streams.push(g);
        assert.equal(g.status, 200, g.raw);
        assert.match(g.headers['content-type'], /^text\/event-stream/);
        result(await post({ jsonrpc: '2.0', id: 5, method: 'logging/setLevel', params: { level: 'debug' } }), 5);
        const started = result(await post({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} } }), 6);
        assert.match(started.content[0].text, /Started simulated/);
        // one message is sent at once, then one every 5 s
        await g.until((x) => x.events.some((e) => e.json?.method === 'notifications/message'), 8000, 'a notifications/message on the GET stream');
        const m = g.events.find((e) => e.json?.method === 'notifications/message');
        assert.match(m.json.params.data, new RegExp(`SessionId ${sid}`));
        assert.equal(g.ended, false, 'GET stream still open');
        result(await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'toggle-simulated-logging', arguments: {} } }), 7);
        g.close();
    }));

    test('DELETE ends the session (200), the session is then unknown', T(async () => {
        const r = await request(MCP(), { method: 'DELETE', headers: { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': PV } });
        assert.equal(r.status, 200, r.text);
        const after = await post({ jsonrpc: '2.0', id: 8, method: 'tools/list' });
        assert.ok(after.status === 400 || after.status === 404, `request on a deleted session: ${after.status} ${after.text}`);
    }));
});
