// legacy-as.test.mjs -- legacy_as_metadata: 2025-03-26 clients look for the authorization
// server's metadata at the MCP server's own origin (SPEC D-22). With the option on, the gateway
// mirrors the document it discovered for the route's first issuer; without it, 404.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { OidcAS } from './lib/as.mjs';

let up, as, dir, gwOn, gwOff, portOn, portOff, adminOn;
const T = (fn) => showLogsOnFailure(() => [gwOn, gwOff], fn);

function conf(port, admin, legacy, resource) {
    return baseConfig({
        listen: port,
        admin,
        extra: `legacy_as_metadata ${legacy ? 'on' : 'off'};
issuer ${as.issuer} { allow_http on; }
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${resource};
    issuer ${as.issuer};
    default;
}`,
    });
}

/* /readyz turns 200 once the key manager has the issuer's keys (and so its metadata). */
async function waitReady(admin, ms = 10000) {
    const end = Date.now() + ms;
    for (let i = 0; i < 1000; i++) {
        const status = await new Promise((resolve) => {
            http.get({ host: '127.0.0.1', port: admin, path: '/readyz', timeout: 2000 }, (res) => {
                res.resume();
                resolve(res.statusCode);
            }).on('error', () => resolve(0));
        });
        if (status === 200) return;
        if (Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`/readyz not 200 within ${ms} ms`);
}

before(async () => {
    let asPort, adminOff;
    [portOn, portOff, adminOn, adminOff, asPort] = await freePorts(5);
    up = await Upstream.start();
    dir = makeTempDir('mcpgate-legacy-');
    as = await new OidcAS({ port: asPort, dir, resources: [`http://127.0.0.1:${portOn}/mcp`] }).start();
    gwOn = await startGateway({ dir, confName: 'on.conf', conf: conf(portOn, adminOn, true, `http://127.0.0.1:${portOn}/mcp`) });
    gwOff = await startGateway({ dir, confName: 'off.conf', conf: conf(portOff, adminOff, false, `http://127.0.0.1:${portOff}/mcp`) });
    await waitReady(adminOn);
    await waitReady(adminOff);
});

after(async () => {
    try {
        if (gwOn) await gwOn.stop();
        if (gwOff) await gwOff.stop();
    } finally {
        if (as) await as.stop();
        if (up) await up.stop();
        gwOn?.removeDir();
    }
});

describe('legacy_as_metadata', () => {
    test('on: /.well-known/oauth-authorization-server mirrors the issuer\'s own document', T(async () => {
        const mark = up.mark();
        const r = await rawRequest(portOn, req('GET', '/.well-known/oauth-authorization-server'));
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.equal(r.headers['cache-control'], 'public, max-age=3600');
        const doc = JSON.parse(r.text);
        const direct = await (await fetch(`${as.issuer}/.well-known/oauth-authorization-server`)).json();
        assert.deepEqual(doc, direct, 'the mirror is the document the authorization server serves');
        assert.equal(doc.issuer, as.issuer);
        assert.ok(doc.token_endpoint && doc.jwks_uri);
        assert.equal(up.since(mark).length, 0, 'answered by the gateway, not the upstream');
    }));

    test('off (the default): 404, never the upstream', T(async () => {
        const mark = up.mark();
        const r = await rawRequest(portOff, req('GET', '/.well-known/oauth-authorization-server'));
        assert.equal(r.status, 404);
        assert.equal(up.since(mark).length, 0);
    }));
});
