// sdk-client.test.mjs -- the official TypeScript SDK client (Client + StreamableHTTPClientTransport)
// talks to server-everything through the gateway: connect, list tools, call echo, progress.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startGateway, baseConfig, showLogsOnFailure } from './lib/gateway.mjs';
import { startEverything } from './lib/everything.mjs';
import { freePorts } from './lib/ports.mjs';
import { deadline } from './lib/procs.mjs';

let gw, ev, port, client, transport;
const T = (fn) => showLogsOnFailure(() => gw, fn);

before(async () => {
    ev = await startEverything();
    [port] = await freePorts(1);
    gw = await startGateway({
        conf: baseConfig({ listen: port, timeouts: { upstream_timeout: '10s' }, routes: [['/mcp', ev.url('/mcp')]] }),
    });
});

after(async () => {
    try {
        await client?.close();
    } catch {
        /* ignore */
    }
    try {
        if (gw) await gw.stop();
    } finally {
        if (ev) await ev.stop();
        gw?.removeDir();
    }
});

test('SDK client: connect, tools/list, tools/call echo, progress, terminate', T(async () => {
    client = new Client({ name: 'mcpgate-itest-sdk', version: '0.0.0' });
    transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`));
    await deadline(client.connect(transport), 10000, 'SDK connect');
    assert.ok(transport.sessionId, 'session id received through the gateway');
    assert.equal(client.getServerVersion().name, 'mcp-servers/everything');

    const { tools } = await deadline(client.listTools(), 10000, 'listTools');
    assert.ok(tools.some((t) => t.name === 'echo'), 'echo listed');

    const r = await deadline(client.callTool({ name: 'echo', arguments: { message: 'sdk via gateway' } }), 10000, 'callTool echo');
    assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: sdk via gateway' }]);

    const progress = [];
    const lr = await deadline(
        client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, {
            onprogress: (p) => progress.push(p.progress),
        }),
        10000,
        'long-running callTool',
    );
    assert.deepEqual(progress, [1, 2], 'progress notifications delivered to the SDK');
    assert.match(lr.content[0].text, /completed/i);

    await deadline(transport.terminateSession(), 5000, 'terminateSession (DELETE)');
    assert.equal(transport.sessionId, undefined, 'session terminated');
}));
