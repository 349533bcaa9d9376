// apikey.test.mjs -- defence in depth (issue 10): API keys per route (mcpgate-token apikey, only
// digests in the config, Bearer or api_key_header, scope rules, never forwarded, audit), CORS on
// MCP routes and metadata, HSTS on TLS listeners, the config-check policies (plain HTTP off the
// host only when said out loud, owner-only key files and files holding secrets), and the rate
// limit on refused-credential audit lines.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir, checkConfig } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { rawRequest, req } from './lib/rawhttp.mjs';
import { freePorts } from './lib/ports.mjs';
import { keygen, writeJwks, mint, tokenBin } from './lib/tokens.mjs';
import { makeCert } from './lib/cert.mjs';

const ISS = 'https://issuer.test.invalid';
const ORIGIN = 'https://app.example.com';
let gw, up, port, tport, dir, resource, es, auditFile, cert;
let svc, other, extra; // keys from mcpgate-token apikey: {key, block, digest}
const T = (fn) => showLogsOnFailure(() => gw, fn);

/* mcpgate-token apikey: the key (printed once) and the config block with its digest. */
function apikey(args) {
    const out = execFileSync(tokenBin(), ['apikey', ...args], { encoding: 'utf8', timeout: 10000 });
    const lines = out.split('\n');
    const key = lines.find((l) => l && !l.startsWith('#'));
    const block = lines.slice(lines.indexOf(key) + 1).filter((l) => !l.startsWith('#')).join('\n');
    const digest = /digest (sha256:[0-9a-f]{64});/.exec(block)[1];
    return { key, block, digest, out };
}

before(async () => {
    up = await Upstream.start();
    up.route('/corsy', (rq, res) => {
        // an upstream with CORS of its own: the gateway's answer must be the only one
        res.writeHead(200, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*',
            'Access-Control-Expose-Headers': 'X-Whatever', 'Strict-Transport-Security': 'max-age=5' });
        res.end('{"jsonrpc":"2.0","id":7,"result":{}}');
    });
    [port, tport] = await freePorts(2);
    dir = makeTempDir('mcpgate-apikey-');
    resource = `http://127.0.0.1:${port}/mcp`;
    es = keygen(dir, 'ES256', 'es-1');
    writeJwks(path.join(dir, 'issuer.jwks.json'), [es]);
    auditFile = path.join(dir, 'audit.log');
    cert = makeCert(dir);
    svc = apikey(['--name', 'svc', '--subject', 'build-bot', '--scopes', 'mcp:read mcp:tools']);
    other = apikey(['--name', 'other', '--scopes', 'mcp:read']);
    extra = apikey(['--name', 'viewer']);
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: [port, `listen 127.0.0.1:${tport} { tls_certificate ${cert.cert}; tls_certificate_key ${cert.key}; }`],
            routes: [['/open', up.url('/open')]],
            extra: `
access_log ${auditFile};
issuer ${ISS} { jwks_file ${path.join(dir, 'issuer.jwks.json')}; }
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${resource};
    issuer ${ISS};
    api_key_header X-Api-Key;
    ${svc.block}
    ${extra.block}
    tool admin_* mcp:admin;
    cors_origins ${ORIGIN};
}
route /keys-only {
    upstream ${up.url('/keys-only')};
    ${other.block}
}
route /corsy {
    upstream ${up.url('/corsy')};
    resource http://127.0.0.1:${port}/corsy;
    issuer ${ISS};
    allowed_origins ${ORIGIN};
}
`,
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

const list = '{"jsonrpc":"2.0","id":7,"method":"tools/list"}';
const call = (name) => `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"${name}","arguments":{}}}`;
const post = (headers = {}, target = '/mcp', body = list) =>
    req('POST', target, { 'Content-Type': 'application/json', ...headers }, body);
const bearer = (t) => ({ Authorization: `Bearer ${t}` });

async function refused(bytes, status) {
    const mark = up.mark();
    const resp = await rawRequest(port, bytes);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(up.since(mark).length, 0, `upstream saw the refused request (${resp.status})`);
    assert.equal(resp.status, status, `status: ${resp.status} ${resp.headers['www-authenticate'] || ''} ${resp.text}`);
    return resp;
}

async function allowed(bytes, p = port, opts = {}) {
    const mark = up.mark();
    const resp = await rawRequest(p, bytes, opts);
    assert.equal(resp.status, 200, `status: ${resp.status} ${resp.headers['www-authenticate'] || ''} ${resp.text}`);
    const recs = up.since(mark);
    assert.equal(recs.length, 1);
    await recs[0].complete;
    return { rec: recs[0], resp };
}

function auditLines() {
    if (!fs.existsSync(auditFile)) return [];
    return fs.readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function waitAudit(pred) {
    const end = Date.now() + 3000;
    for (;;) {
        const hit = auditLines().find(pred);
        if (hit) return hit;
        if (Date.now() > end) assert.fail('audit line not found');
        await new Promise((r) => setTimeout(r, 25));
    }
}

describe('API keys', () => {
    test('mcpgate-token apikey: a 32-byte base64url key, printed once, and a block with only its digest', () => {
        assert.match(svc.key, /^[A-Za-z0-9_-]{43}$/);
        assert.notEqual(svc.key, other.key);
        assert.ok(!svc.block.includes(svc.key), 'the config block must not hold the key');
        assert.match(svc.block, /^api_key svc \{\n {4}digest sha256:[0-9a-f]{64};\n {4}subject "build-bot";\n {4}scopes mcp:read mcp:tools;\n\}/);
        const d = execFileSync(tokenBin(), ['apikey', '--digest'], { input: svc.key + '\n', encoding: 'utf8' });
        assert.equal(d.trim(), `digest ${svc.digest};`);
    });

    test('a key as Bearer on its route: the caller is the key\'s subject, and the key never goes upstream', T(async () => {
        const { rec } = await allowed(post({ ...bearer(svc.key), 'X-Request-Id': 'apikey-ok-1' }));
        assert.equal(rec.headers.authorization, undefined);
        assert.ok(!JSON.stringify(rec.rawHeaders).includes(svc.key), 'the key must not appear upstream');
        assert.equal(rec.headers['x-mcp-subject'], 'build-bot');
        assert.equal(rec.headers['x-mcp-client-id'], 'svc');
        assert.equal(rec.headers['x-mcp-issuer'], 'urn:mcpgate:api-key');
        assert.equal(rec.headers['x-mcp-scopes'], 'mcp:read mcp:tools');
        const a = await waitAudit((l) => l.request_id === 'apikey-ok-1');
        assert.equal(a.decision, 'allow');
        assert.equal(a.iss, 'urn:mcpgate:api-key');
        assert.equal(a.sub, 'build-bot');
        assert.equal(a.client_id, 'svc');
        assert.ok(!fs.readFileSync(auditFile, 'utf8').includes(svc.key), 'no key in the audit log');
        assert.ok(!gw.stderr.includes(svc.key), 'no key in the error log');
    }));

    test('api_key_header X-Api-Key works and is stripped; subject defaults to the name', T(async () => {
        const { rec } = await allowed(post({ 'X-Api-Key': extra.key }));
        assert.equal(rec.headers['x-api-key'], undefined, 'X-Api-Key must not reach the upstream');
        assert.equal(rec.headers['x-mcp-subject'], 'viewer');
        assert.ok(!JSON.stringify(rec.rawHeaders).includes(extra.key));
        // also on GET and DELETE
        await allowed(req('GET', '/mcp', { 'X-Api-Key': svc.key }));
        // the header on a route that does not use it is not forwarded either
        const r2 = await allowed(req('GET', '/open', { 'X-Api-Key': svc.key }));
        assert.equal(r2.rec.headers['x-api-key'], undefined);
    }));

    test('scope rules apply to key callers: a tool needing another scope is 403', T(async () => {
        await allowed(post(bearer(svc.key), '/mcp', call('echo')));
        const r = await refused(post(bearer(svc.key), '/mcp', call('admin_reset')), 403);
        assert.match(r.headers['www-authenticate'], /error="insufficient_scope"/);
        assert.match(r.headers['www-authenticate'], /mcp:admin/);
    }));

    test('a key is refused on a route that does not list it, and unknown keys are 401', T(async () => {
        // the key of /keys-only on /mcp, and the key of /mcp on /keys-only
        let r = await refused(post({ ...bearer(other.key), 'X-Request-Id': 'apikey-no-1' }), 401);
        assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
        await refused(post(bearer(svc.key), '/keys-only'), 401);
        await refused(post({ 'X-Api-Key': other.key }), 401);
        // unknown keys, in either place
        r = await refused(post(bearer('A'.repeat(43))), 401);
        assert.match(r.headers['www-authenticate'], /error_description="The API key is not valid for this resource."/);
        await refused(post(bearer('nope'), '/keys-only'), 401);
        // no credential at all on a keys-only route
        await refused(post({}, '/keys-only'), 401);
        // its own key works there
        await allowed(post(bearer(other.key), '/keys-only'));
        const d = await waitAudit((l) => l.request_id === 'apikey-no-1');
        assert.equal(d.decision, 'deny');
        assert.equal(d.reason, 'api_key_unknown');
        assert.equal(d.client, '127.0.0.1');
    }));

    test('two credentials at once are refused (400); a JWT still works on a route with keys', T(async () => {
        await refused(post({ ...bearer(svc.key), 'X-Api-Key': svc.key }), 400);
        await refused(req('GET', '/mcp', { 'X-Api-Key': [svc.key, svc.key] }), 400);
        const tok = mint(es, { iss: ISS, aud: resource, sub: 'alice', scope: 'mcp:tools' });
        const { rec } = await allowed(post(bearer(tok)));
        assert.equal(rec.headers['x-mcp-subject'], 'alice');
        assert.equal(rec.headers['x-mcp-issuer'], ISS);
    }));
});

describe('CORS', () => {
    const askHeaders = 'authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name, x-api-key';

    test('preflight from an allowed origin: one Allow-Origin, every MCP header allowed, no credentials', T(async () => {
        const r = await refused(req('OPTIONS', '/mcp', { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST',
            'Access-Control-Request-Headers': askHeaders }), 204);
        assert.equal(r.count('access-control-allow-origin'), 1, JSON.stringify(r.headerList));
        assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
        const allow = r.headers['access-control-allow-headers'].toLowerCase().split(/\s*,\s*/);
        for (const h of askHeaders.split(', ')) assert.ok(allow.includes(h), `${h} allowed: ${allow}`);
        assert.match(r.headers['access-control-allow-methods'], /POST/);
        assert.equal(r.headers['access-control-allow-credentials'], undefined);
        assert.match(r.headers.vary, /Origin/);
    }));

    test('actual responses expose Mcp-Session-Id and WWW-Authenticate; a 401 is readable too', T(async () => {
        const { resp } = await allowed(post({ ...bearer(svc.key), Origin: ORIGIN }));
        assert.equal(resp.count('access-control-allow-origin'), 1);
        const expose = resp.headers['access-control-expose-headers'].toLowerCase();
        assert.match(expose, /mcp-session-id/);
        assert.match(expose, /www-authenticate/);
        const r = await refused(post({ Origin: ORIGIN }), 401);
        assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
        assert.match(r.headers['access-control-expose-headers'].toLowerCase(), /www-authenticate/);
    }));

    test('a disallowed origin is refused, preflight and request alike, with no CORS headers', T(async () => {
        const p = await refused(req('OPTIONS', '/mcp', { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' }), 403);
        assert.equal(p.headers['access-control-allow-origin'], undefined);
        // the Origin check is not bypassed by a valid key
        const r = await refused(post({ ...bearer(svc.key), Origin: 'https://evil.example' }), 403);
        assert.equal(r.headers['access-control-allow-origin'], undefined);
    }));

    test('the metadata endpoints answer preflight and GET with CORS', T(async () => {
        const p = await rawRequest(port, req('OPTIONS', '/.well-known/oauth-protected-resource/mcp',
            { Origin: ORIGIN, 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'mcp-protocol-version' }));
        assert.equal(p.status, 204);
        assert.equal(p.headers['access-control-allow-origin'], '*');
        assert.match(p.headers['access-control-allow-headers'], /MCP-Protocol-Version/i);
        const g = await rawRequest(port, req('GET', '/.well-known/oauth-protected-resource/mcp', { Origin: ORIGIN }));
        assert.equal(g.status, 200);
        assert.equal(g.count('access-control-allow-origin'), 1);
    }));

    test('an upstream\'s own CORS headers do not duplicate the gateway\'s', T(async () => {
        const tok = mint(es, { iss: ISS, aud: `http://127.0.0.1:${port}/corsy` });
        const { resp } = await allowed(post({ ...bearer(tok), Origin: ORIGIN }, '/corsy'));
        assert.equal(resp.count('access-control-allow-origin'), 1, JSON.stringify(resp.headerList));
        assert.equal(resp.headers['access-control-allow-origin'], ORIGIN);
        assert.equal(resp.count('access-control-expose-headers'), 1);
        // plain HTTP listener: no HSTS of ours; the upstream's passes as is
        assert.equal(resp.count('strict-transport-security'), 1);
    }));
});

describe('HSTS', () => {
    test('Strict-Transport-Security (1 year) on the TLS listener, on relayed and own replies', T(async () => {
        const tls = { ca: cert.certPem };
        const { resp } = await allowed(post(bearer(svc.key)), tport, { tls });
        assert.equal(resp.headers['strict-transport-security'], 'max-age=31536000');
        const r = await rawRequest(tport, post({}), { tls });
        assert.equal(r.status, 401);
        assert.equal(r.headers['strict-transport-security'], 'max-age=31536000');
        // the upstream's own value is replaced, not doubled
        const tok = mint(es, { iss: ISS, aud: `http://127.0.0.1:${port}/corsy` });
        const c = await allowed(post(bearer(tok), '/corsy'), tport, { tls });
        assert.equal(c.resp.count('strict-transport-security'), 1);
        assert.equal(c.resp.headers['strict-transport-security'], 'max-age=31536000');
        // and none on plain HTTP
        const p = await allowed(post(bearer(svc.key)));
        assert.equal(p.resp.headers['strict-transport-security'], undefined);
    }));
});

describe('config check: TLS policy and secret files', () => {
    let cdir, n = 0;
    before(() => {
        cdir = makeTempDir('mcpgate-policy-');
    });
    after(() => fs.rmSync(cdir, { recursive: true, force: true }));
    const write = (text) => {
        const p = path.join(cdir, `c${++n}.conf`);
        fs.writeFileSync(p, text);
        return p;
    };
    const check = (p) => {
        const r = checkConfig(p);
        return { ...r, out: r.stderr + r.stdout };
    };
    const ROUTE = 'route /mcp { upstream http://127.0.0.1:3001/mcp; }\n';

    test('a plain listener on a non-loopback address is refused by default, with FILE:LINE', () => {
        const p = write(`listen 0.0.0.0:18081;\n${ROUTE}`);
        const r = check(p);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(r.out.includes(`${p}:1: listen "0.0.0.0:18081" is plain HTTP on a non-loopback address`), r.out);
        assert.match(r.out, /"plaintext_ok;" in its block/);
        const v6 = check(write(`listen [::]:18082;\n${ROUTE}`));
        assert.notEqual(v6.code, 0, v6.out);
        // loopback needs nothing
        const ok = check(write(`listen 127.0.0.1:18081;\nlisten [::1]:18082;\nlisten localhost:18083;\n${ROUTE}`));
        assert.equal(ok.code, 0, ok.out);
        assert.doesNotMatch(ok.out, /warning/);
    });

    test('plaintext_ok allows it, and -t still warns about it', () => {
        const r = check(write(`listen 0.0.0.0:18081 { plaintext_ok; }\n${ROUTE}`));
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /:1: warning: listen 0\.0\.0\.0:18081 is plain HTTP on a non-loopback address \(plaintext_ok\)/);
    });

    test('an http:// upstream to a non-loopback host needs upstream_plaintext_ok', () => {
        const text = `listen 127.0.0.1:18081;\nroute /mcp {\n    upstream http://10.0.0.9:3001/mcp;\n}\n`;
        const p = write(text);
        const r = check(p);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(r.out.includes(`${p}:2: route "/mcp": upstream "http://10.0.0.9:3001/mcp" is plain HTTP to a non-loopback host`), r.out);
        const q = check(write(text.replace('/mcp;\n', '/mcp;\n    upstream_plaintext_ok;\n')));
        assert.equal(q.code, 0, q.out);
        assert.match(q.out, /warning: route \/mcp: upstream http:\/\/10\.0\.0\.9:3001\/mcp is plain HTTP to a non-loopback host \(upstream_plaintext_ok\)/);
    });

    test('an issuer fetched over http to a non-loopback host is refused, even with allow_http', () => {
        const p = write(`listen 127.0.0.1:18081;\nissuer http://as.example.com { allow_http on; }\n${ROUTE}`);
        const r = check(p);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(r.out.includes(`${p}:2: issuer "http://as.example.com": discovery from the issuer URL is plain http to a non-loopback host`), r.out);
        const ok = check(write(`listen 127.0.0.1:18081;\nissuer http://127.0.0.1:9/realm { allow_http on; }\n${ROUTE}`));
        assert.equal(ok.code, 0, ok.out);
    });

    test('an included file holding a secret must be owner-only; ${VAR} values and the opt-out', () => {
        const sub = fs.mkdtempSync(path.join(cdir, 'inc-'));
        const inc = path.join(sub, 'up.inc');
        fs.writeFileSync(inc, 'upstream http://127.0.0.1:3001/mcp;\nupstream_authorization "Bearer s3cret-value";\n', { mode: 0o644 });
        fs.chmodSync(inc, 0o644);
        const text = `listen 127.0.0.1:18081;\nroute /mcp {\n    include ${inc};\n}\n`;
        const p = write(text);
        const r = check(p);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(r.out.includes(`${inc}:2: upstream_authorization: ${inc} has mode 0644: a file holding secrets must be readable by its owner only (chmod 600 ${inc})`), r.out);
        assert.ok(!r.out.includes('s3cret-value'), 'the secret is never printed');
        // the opt-out of private keys applies: a warning instead
        const w = check(write(`allow_loose_key_permissions on;\n${text}`));
        assert.equal(w.code, 0, w.out);
        assert.match(w.out, /warning: .*up\.inc has mode 0644: a file holding secrets/);
        // owner-only passes
        fs.chmodSync(inc, 0o600);
        assert.equal(check(p).code, 0);
        // a value from the environment is not in the file
        fs.writeFileSync(inc, 'upstream http://127.0.0.1:3001/mcp;\nupstream_authorization "Bearer ${PATH}";\n');
        fs.chmodSync(inc, 0o644);
        const e = check(p);
        assert.equal(e.code, 0, e.out);
        // the top-level file too
        const top = write(`listen 127.0.0.1:18081;\nroute /mcp {\n    upstream http://127.0.0.1:3001/mcp;\n    upstream_authorization "Bearer s3cret-value";\n}\n`);
        fs.chmodSync(top, 0o644);
        const t = check(top);
        assert.notEqual(t.code, 0, t.out);
        assert.ok(t.out.includes(`${top}:4: upstream_authorization: ${top} has mode 0644`), t.out);
    });

    test('a private key readable by others is refused at -t with FILE:LINE; 0600 passes', () => {
        const k = makeCert(fs.mkdtempSync(path.join(cdir, 'k-')));
        fs.chmodSync(k.key, 0o644);
        const text = `listen 127.0.0.1:18081;\nlisten 127.0.0.1:18443 {\n    tls_certificate ${k.cert};\n    tls_certificate_key ${k.key};\n}\n${ROUTE}`;
        const p = write(text);
        const r = check(p);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(r.out.includes(`${p}:4: tls_certificate_key ${k.key} has mode 0644`), r.out);
        assert.match(r.out, /chmod 600/);
        // the opt-out turns it into a warning
        const w = check(write(`allow_loose_key_permissions on;\n${text}`));
        assert.equal(w.code, 0, w.out);
        assert.match(w.out, /warning: tls_certificate_key .* has mode 0644/);
        fs.chmodSync(k.key, 0o600);
        const ok = check(p);
        assert.equal(ok.code, 0, ok.out);
    });

    test('mcpgate-token keygen writes private keys with mode 0600', () => {
        const k = keygen(cdir, 'ES256', 'perm-1');
        assert.equal(fs.statSync(k.key).mode & 0o777, 0o600);
    });

    test('api_key config errors: a key instead of a digest, api_key_header without keys', () => {
        const p = write(`listen 127.0.0.1:18081;\nroute /mcp {\n    upstream http://127.0.0.1:3001/mcp;\n    api_key a { digest ${svc.key}; }\n}\n`);
        const r = check(p);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(r.out.includes(`${p}:4: invalid digest`), r.out);
        assert.ok(!r.out.includes(svc.key), 'the error does not echo the key');
        const q = write(`listen 127.0.0.1:18081;\nroute /mcp {\n    upstream http://127.0.0.1:3001/mcp;\n    api_key_header X-Api-Key;\n}\n`);
        const r2 = check(q);
        assert.notEqual(r2.code, 0);
        assert.ok(r2.out.includes(`${q}:2: route "/mcp" has "api_key_header" but no "api_key"`), r2.out);
    });
});

describe('audit of refused credentials: rate-limited per client address', () => {
    test('a flood of 100 bad credentials from 127.0.0.1: at most 10 lines a second plus a summary; allowed requests all logged', T(async () => {
        await new Promise((r) => setTimeout(r, 1100)); // a fresh window for 127.0.0.1
        const before = auditLines().length;
        const t0 = Date.now();
        const bad = (i) => post({ ...bearer(i % 2 ? 'A'.repeat(43) : `eyJhbGciOiJFUzI1NiJ9.e30.bad${i}`), 'X-Request-Id': `flood-${i}` });
        for (let i = 0; i < 100; i += 10) {
            const batch = [];
            for (let j = i; j < i + 10; j++) batch.push(rawRequest(port, bad(j)));
            for (const r of await Promise.all(batch)) assert.equal(r.status, 401);
            if (i === 50) await allowed(post({ ...bearer(svc.key), 'X-Request-Id': 'flood-good-1' }));
        }
        const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
        // the window ends; the next allowed line brings the summary out
        await new Promise((r) => setTimeout(r, 1100));
        await allowed(post({ ...bearer(svc.key), 'X-Request-Id': 'flood-good-2' }));
        await waitAudit((l) => l.request_id === 'flood-good-2');
        const lines = auditLines().slice(before);
        const refusedLines = lines.filter((l) => /^flood-\d+$/.test(l.request_id || ''));
        const summaries = lines.filter((l) => l.reason === 'refused_credentials_suppressed');
        assert.ok(refusedLines.length >= 10, `at least one window's worth: ${refusedLines.length}`);
        assert.ok(refusedLines.length <= 10 * seconds, `${refusedLines.length} refused lines in ${seconds} windows`);
        for (const l of refusedLines) {
            assert.equal(l.decision, 'deny');
            assert.equal(l.client, '127.0.0.1');
            assert.notEqual(l.reason, 'ok');
        }
        assert.ok(summaries.length >= 1, 'a suppression summary');
        for (const s of summaries) {
            assert.equal(s.client, '127.0.0.1');
            assert.equal(s.decision, 'deny');
            assert.ok(Number.isInteger(s.suppressed) && s.suppressed > 0);
        }
        const held = summaries.reduce((a, s) => a + s.suppressed, 0);
        assert.equal(refusedLines.length + held, 100, 'every refused request is a line or counted in a summary');
        // allowed requests are never dropped
        assert.ok(lines.some((l) => l.request_id === 'flood-good-1' && l.decision === 'allow'));
        assert.ok(lines.some((l) => l.request_id === 'flood-good-2' && l.decision === 'allow'));
        assert.match(gw.stderrBuf, /refused-credential lines from 127\.0\.0\.1 suppressed/);
    }));
});
