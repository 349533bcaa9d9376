// quickstart.test.mjs -- the README's first command: contrib/quickstart brings up mcpgate on
// embedded defaults with a local key in front of server-everything, refuses a call without a
// token and serves one with the token it printed (QUICKSTART_SELFTEST runs both and exits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayBin } from './lib/gateway.mjs';
import { freePorts } from './lib/ports.mjs';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('contrib/quickstart: 401 without a token, an MCP initialize with the minted one', async () => {
    const [port, upport] = await freePorts(2);
    const r = spawnSync(path.join(top, 'contrib/quickstart'), [], {
        env: {
            ...process.env,
            MCPGATE_BIN: gatewayBin(),
            QUICKSTART_SELFTEST: '1',
            MCPGATE_PORT: String(port),
            UPSTREAM_PORT: String(upport),
        },
        encoding: 'utf8',
        timeout: 60000,
    });
    assert.equal(r.status, 0, `quickstart failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^quickstart: ok$/m);
});
