// browser-cors.test.mjs -- CORS from a real browser (issue 10): Debian's headless Chromium loads a
// page from one loopback origin (a node http server on 127.0.0.1:PORT_A) whose script calls the
// gateway on another origin (127.0.0.1:PORT_G) with fetch(): POST initialize with a Bearer token
// and MCP-Protocol-Version (a preflighted request), reads Mcp-Session-Id from the response (only
// possible through Access-Control-Expose-Headers), then tools/call with that session id; once
// against a recording MCP-shaped upstream and once against the real server-everything. A page
// from a third origin (127.0.0.1:PORT_B, not in allowed_origins) makes the same calls, and a
// simple (non-preflighted) POST: every one must fail in the browser, the gateway must answer 403,
// and the upstream must see nothing.
//
// No npm browser tooling: chromium --headless=new --dump-dom; each page writes its results into
// the DOM and the test parses the dumped DOM. Chromium runs in its own process group with a new
// empty --user-data-dir, bounded in time, and is stopped by PID (the whole group); afterwards no
// process naming that profile directory may be left. Without chromium (MCPGATE_CHROMIUM or
// `chromium` on PATH) the test is skipped with a message; .ci/run installs it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startGateway, baseConfig, showLogsOnFailure, makeTempDir } from './lib/gateway.mjs';
import { Upstream } from './lib/upstream.mjs';
import { startEverything } from './lib/everything.mjs';
import { freePorts } from './lib/ports.mjs';
import { spawnTracked, withTimeout, sleep } from './lib/procs.mjs';
import { keygen, writeJwks, mint } from './lib/tokens.mjs';
import { McpState, mcpJson } from './lib/frontdoor-upstream.mjs';

const ISS = 'https://issuer.browser-cors.test';
const PROTO = '2025-06-18';
const CHROMIUM_MS = 30000; // wall-clock bound for one chromium run

/* The chromium binary: $MCPGATE_CHROMIUM (when set, only that one), else `chromium` (Debian)
 * or `chromium-browser` on PATH or in /usr/bin. */
function findChromium() {
    const cands = [];
    if (process.env.MCPGATE_CHROMIUM) cands.push(process.env.MCPGATE_CHROMIUM); // only that one
    else {
        for (const d of (process.env.PATH || '/usr/bin:/bin').split(':').concat('/usr/bin')) {
            if (d) cands.push(path.join(d, 'chromium'), path.join(d, 'chromium-browser'));
        }
    }
    for (const c of cands) {
        try {
            fs.accessSync(c, fs.constants.X_OK);
            return c;
        } catch {
            /* next */
        }
    }
    return null;
}
const CHROMIUM = findChromium();
const SKIP_MSG = process.env.MCPGATE_CHROMIUM
    ? `MCPGATE_CHROMIUM=${process.env.MCPGATE_CHROMIUM} is not an executable file`
    : 'chromium is not installed (apt-get install chromium; .ci/run installs it), or set MCPGATE_CHROMIUM';

let dir, up, ev, gw, pageA, pageB, gport, aport, bport, key, auditFile;
const state = new McpState();
const chromeRuns = []; // what dumpDom() returned, for the failure report
const T = (fn) =>
    showLogsOnFailure(() => gw, async (t) => {
        try {
            await fn(t);
        } catch (e) {
            for (const r of chromeRuns) {
                const err = r.stderr.split('\n').filter((l) => !/dbus|UPower/.test(l)).join('\n');
                process.stderr.write(`\n--- chromium (${r.label}) exit ${r.code}/${r.signal}, stderr without D-Bus noise (last 4k) ---\n${err.slice(-4096)}\n`);
            }
            if (ev) process.stderr.write(`\n--- server-everything stderr ---\n${ev.stderr.slice(-2048)}\n`);
            throw e;
        }
    });

const gwUrl = (p) => `http://127.0.0.1:${gport}${p}`;
const originA = () => `http://127.0.0.1:${aport}`;
const originB = () => `http://127.0.0.1:${bport}`;

/* ---- the page ---- */

/* The script both pages run. cfg: {gateway, tokens: {path: token}, proto, marker, mode: 'allowed'|'denied'}.
 * Results go into <pre id="out"> as JSON, and document.title becomes "done". */
const PAGE_SCRIPT = String.raw`
const cfg = JSON.parse(document.getElementById('cfg').textContent);
const out = { origin: location.origin, mode: cfg.mode, steps: {} };
const put = () => { document.getElementById('out').textContent = JSON.stringify(out); };
const errInfo = (e) => ({ error: (e && e.name) || 'Error', message: String((e && e.message) || e) });

/* JSON or an SSE stream of JSON-RPC messages: the message with <id>. */
function rpcResult(text, id) {
    const t = text.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
        const m = JSON.parse(t);
        return Array.isArray(m) ? m.find((x) => x.id === id) : m;
    }
    for (const block of t.split(/\r?\n\r?\n/)) {
        const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (!data) continue;
        try {
            const m = JSON.parse(data);
            if (m && m.id === id) return m;
        } catch (e) { /* not JSON */ }
    }
    return { unparsed: t.slice(0, 500) };
}

function headers(token, extra) {
    return Object.assign({
        'Authorization': 'Bearer ' + token,
        'Content-Type': 'application/json',
        'Accept': 'application/json, text/event-stream',
        'MCP-Protocol-Version': cfg.proto,
    }, extra || {});
}

async function post(path, body, extraHeaders) {
    const r = await fetch(cfg.gateway + path, { method: 'POST', mode: 'cors', headers: headers(cfg.tokens[path], extraHeaders),
        body: JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, r, text };
}

/* initialize -> Mcp-Session-Id -> notifications/initialized -> tools/call echo. */
async function flow(path) {
    const s = {};
    try {
        const init = await post(path, { jsonrpc: '2.0', id: 1, method: 'initialize',
            params: { protocolVersion: cfg.proto, capabilities: {}, clientInfo: { name: 'browser-cors', version: '0' } } });
        s.initStatus = init.status;
        s.sessionId = init.r.headers.get('Mcp-Session-Id');
        const m = rpcResult(init.text, 1);
        s.serverName = m && m.result && m.result.serverInfo ? m.result.serverInfo.name : null;
        if (!s.sessionId) { s.initText = init.text.slice(0, 500); return s; }
        const sid = { 'Mcp-Session-Id': s.sessionId };
        const n = await post(path, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
        s.notifiedStatus = n.status;
        const call = await post(path, { jsonrpc: '2.0', id: 2, method: 'tools/call',
            params: { name: 'echo', arguments: { message: cfg.marker } } }, sid);
        s.callStatus = call.status;
        s.callResult = rpcResult(call.text, 2);
    } catch (e) {
        Object.assign(s, errInfo(e));
    }
    return s;
}

/* A request whose outcome is only "did fetch resolve, and with what status". */
async function probe(url, init) {
    try {
        const r = await fetch(url, init);
        const o = { status: r.status, wwwAuthenticate: r.headers.get('WWW-Authenticate') };
        await r.text();
        return o;
    } catch (e) {
        return errInfo(e);
    }
}

async function main() {
    if (cfg.mode === 'allowed') {
        out.steps.recording = await flow('/mcp');
        out.steps.everything = await flow('/ev');
        // a 401 is readable cross-origin, WWW-Authenticate included (exposed)
        out.steps.noToken = await probe(cfg.gateway + '/mcp', { method: 'POST',
            headers: { 'Content-Type': 'application/json', 'MCP-Protocol-Version': cfg.proto },
            body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }) });
    } else {
        // preflighted: the gateway refuses the OPTIONS, the POST is never sent
        out.steps.recording = await flow('/mcp');
        out.steps.everything = await flow('/ev');
        // simple request (no preflight): sent, refused by the Origin check, unreadable
        out.steps.simple = await probe(cfg.gateway + '/mcp', { method: 'POST', mode: 'cors',
            headers: { 'Content-Type': 'text/plain' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { message: cfg.marker } } }) });
    }
}

main().catch((e) => { out.fatal = errInfo(e); }).finally(() => { out.done = true; put(); document.title = 'done'; });
`;

function pageHtml(cfg) {
    // </ cannot appear in the JSON (tokens, URLs and markers are [A-Za-z0-9._:/-]); checked anyway
    const cfgJson = JSON.stringify(cfg);
    if (cfgJson.includes('</')) throw new Error('page config would close its script element');
    return `<!doctype html>
<html><head><meta charset="utf-8"><title>running</title></head>
<body>
<script type="application/json" id="cfg">${cfgJson}</script>
<pre id="out">pending</pre>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

/* A page server on 127.0.0.1:<port>: /page answers the page for <cfgFn()>, everything else 404. */
async function pageServer(port, cfgFn) {
    const srv = http.createServer((req, res) => {
        if (req.url.split('?')[0] === '/page') {
            const body = pageHtml(cfgFn());
            res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
            res.end(body);
        } else {
            res.writeHead(404, { 'Content-Length': 0 });
            res.end();
        }
    });
    await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, '127.0.0.1', resolve);
    });
    return {
        close: () => withTimeout(new Promise((r) => {
            srv.closeAllConnections?.();
            srv.close(() => r());
        }), 5000),
    };
}

/* ---- chromium ---- */

/* PIDs of processes whose command line names <needle> (zombies have none: not counted). */
function processesNaming(needle) {
    const out = [];
    for (const e of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        let cmd;
        try {
            cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
        } catch {
            continue;
        }
        if (cmd.includes(needle)) out.push(Number(e));
    }
    return out;
}

function pgidOf(pid) {
    try {
        // field 5 of /proc/PID/stat, after the parenthesised command name
        return Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[2]);
    } catch {
        return null;
    }
}

/* PIDs of live (non-zombie) processes in process group <pgid>. */
function groupMembers(pgid) {
    const out = [];
    for (const e of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(e)) continue;
        try {
            const f = fs.readFileSync(`/proc/${e}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
            if (f[0] !== 'Z' && Number(f[2]) === pgid) out.push(Number(e));
        } catch {
            /* gone */
        }
    }
    return out;
}

/* Signal process group <pgid> while it has members (a PID is not reused while its group exists). */
function killGroup(pgid, sig) {
    if (!groupMembers(pgid).length) return;
    try {
        process.kill(-pgid, sig);
    } catch {
        /* group gone */
    }
}

/* Process groups of chromium runs in progress: killed if the test process exits early. */
const liveGroups = new Set();
process.on('exit', () => {
    for (const g of liveGroups) {
        try {
            process.kill(-g, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
});

/* Run chromium on <url>; returns the run, with the dumped DOM in run.stdout. Bounded by
 * CHROMIUM_MS; the whole process group is stopped by PID afterwards, and stray processes
 * naming the profile dir are killed by PID. run.leftovers: any still alive after all that
 * (the test fails on them); run.lingered / run.escaped: diagnostics. */
async function dumpDom(label, url) {
    const profile = fs.mkdtempSync(path.join(dir, `chromium-${label}-`));
    const args = [
        '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-dev-shm-usage', '--disable-breakpad', '--disable-crash-reporter',
        '--disable-extensions', '--no-default-browser-check', '--no-proxy-server',
        `--user-data-dir=${profile}`,
        '--virtual-time-budget=10000', '--dump-dom', url,
    ];
    const child = spawnTracked(CHROMIUM, args, {
        cwd: profile,
        detached: true, // own process group: the renderer, zygote and utility processes go with it
        env: { PATH: process.env.PATH || '/usr/bin:/bin', HOME: profile, TMPDIR: profile, LANG: 'C.UTF-8' },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveGroups.add(child.pid);
    const run = { label, stdout: '', stderr: '', code: null, signal: null, forced: false, lingered: [], escaped: [], leftovers: [] };
    chromeRuns.push(run);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
        if (run.stdout.length < 4 << 20) run.stdout += d;
    });
    child.stderr.on('data', (d) => {
        if (run.stderr.length < 1 << 20) run.stderr += d;
    });
    let res = await withTimeout(child.exited, CHROMIUM_MS, null);
    if (!res) {
        run.forced = true;
        killGroup(child.pid, 'SIGTERM');
        res = await withTimeout(child.exited, 3000, null);
        if (!res) {
            killGroup(child.pid, 'SIGKILL');
            res = await withTimeout(child.exited, 5000, { code: null, signal: 'SIGKILL' });
        }
    }
    run.code = res.code;
    run.signal = res.signal;
    // the main process is gone; its helpers (zygotes, renderer, utility processes) exit on their
    // own shortly after: wait for that (bounded), then SIGKILL the group, then kill by PID
    // anything that left the group but still names the profile; all loops bounded
    const alive = () => [...new Set([...groupMembers(child.pid), ...processesNaming(profile)])];
    const pending = async (ms, list = alive) => {
        let left = list();
        for (let i = 0; left.length && i < ms / 50; i++) {
            await sleep(50);
            left = list();
        }
        return left;
    };
    run.lingered = (await pending(3000)).map((p) => `${p} (pgid ${pgidOf(p)})`);
    killGroup(child.pid, 'SIGKILL');
    await pending(1000, () => groupMembers(child.pid));
    const escaped = await pending(1000);
    run.escaped = escaped.map((p) => `${p} (pgid ${pgidOf(p)})`);
    for (const p of escaped) {
        try {
            process.kill(p, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
    run.leftovers = await pending(2000);
    if (!run.leftovers.length) liveGroups.delete(child.pid);
    await withTimeout(new Promise((r) => (child.stdout.readableEnded ? r() : child.stdout.once('end', r))), 2000);
    return run;
}

/* No chromium process outlived the run; what had to be killed is noted. */
function noLeftovers(t, run) {
    if (run.lingered.length) t.diagnostic(`chromium (${run.label}) helpers still alive 3 s after exit: ${run.lingered.join(', ')}`);
    if (run.escaped.length) t.diagnostic(`chromium (${run.label}) helpers outside its process group, killed by PID: ${run.escaped.join(', ')}`);
    assert.deepEqual(run.leftovers, [], `chromium (${run.label}) processes could not be stopped: ${run.leftovers}`);
}

/* The results object the page wrote into <pre id="out">. */
function pageResults(run) {
    assert.ok(!run.forced, `chromium (${run.label}) did not finish within ${CHROMIUM_MS} ms`);
    const m = /<pre id="out">([\s\S]*?)<\/pre>/.exec(run.stdout);
    assert.ok(m, `no <pre id="out"> in the dumped DOM (exit ${run.code}/${run.signal}):\n${run.stdout.slice(0, 2000)}`);
    const text = m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');
    assert.notEqual(text, 'pending', `the page's script did not finish before the DOM was dumped:\n${run.stdout.slice(0, 2000)}`);
    const out = JSON.parse(text);
    assert.equal(out.done, true);
    assert.equal(out.fatal, undefined, `page script failed: ${JSON.stringify(out.fatal)}`);
    return out;
}

/* ---- the gateway's access log (JSON lines) ---- */

const accessMark = () => (fs.existsSync(auditFile) ? fs.statSync(auditFile).size : 0);

/* The access-log entries written after <mark>, once there are at least <n> (bounded wait). */
async function accessSince(mark, n, ms = 3000) {
    let lines = [];
    for (let i = 0; i < ms / 50; i++) {
        const text = fs.existsSync(auditFile) ? fs.readFileSync(auditFile).subarray(mark).toString('utf8') : '';
        lines = text.split('\n').filter(Boolean);
        if (lines.length >= n) break;
        await sleep(50);
    }
    return lines.map((l) => JSON.parse(l));
}

/* ---- setup ---- */

const marker = (who) => `browser-cors-${who}-${process.pid}`;

before(async () => {
    if (!CHROMIUM) return;
    dir = makeTempDir('mcpgate-browser-cors-');
    up = await Upstream.start();
    up.route('/mcp', mcpJson(state));
    ev = await startEverything();
    [gport, aport, bport] = await freePorts(3);
    key = keygen(dir, 'ES256', 'bc-es-1');
    writeJwks(path.join(dir, 'iss.jwks.json'), [key]);
    auditFile = path.join(dir, 'access.log');
    const tok = (p) => mint(key, { iss: ISS, aud: gwUrl(p), sub: 'browser-user', scope: 'mcp:tools', clientId: 'browser-cors' });
    const tokens = { '/mcp': tok('/mcp'), '/ev': tok('/ev') };
    // a token per route (audience = the route's resource); the page picks it by path
    gw = await startGateway({
        dir,
        conf: baseConfig({
            listen: gport,
            timeouts: { upstream_timeout: '10s' },
            extra: `
access_log ${auditFile};
issuer ${ISS} { jwks_file ${path.join(dir, 'iss.jwks.json')}; }
route /mcp {
    upstream ${up.url('/mcp')};
    resource ${gwUrl('/mcp')};
    issuer ${ISS};
    allowed_origins http://127.0.0.1:${aport};
}
route /ev {
    upstream ${ev.url('/mcp')};
    resource ${gwUrl('/ev')};
    issuer ${ISS};
    allowed_origins http://127.0.0.1:${aport};
}
`,
        }),
    });
    pageA = await pageServer(aport, () => ({ gateway: gwUrl(''), tokens, proto: PROTO, marker: marker('a'), mode: 'allowed' }));
    pageB = await pageServer(bport, () => ({ gateway: gwUrl(''), tokens, proto: PROTO, marker: marker('b'), mode: 'denied' }));
});

after(async () => {
    try {
        if (gw) await gw.stop();
    } finally {
        await pageA?.close();
        await pageB?.close();
        if (up) await up.stop();
        if (ev) await ev.stop();
        gw?.removeDir();
    }
});

const skip = CHROMIUM ? false : SKIP_MSG; // each test is reported as skipped, with the reason

describe('CORS from a real headless Chromium page (issue 10)', () => {
    test('an allowed origin: preflight, initialize with Bearer, Mcp-Session-Id read, tools/call with it', { skip }, T(async (t) => {
        const mark = up.mark();
        const logMark = accessMark();
        const run = await dumpDom('allowed', `${originA()}/page`);
        noLeftovers(t, run);
        const out = pageResults(run);
        assert.equal(out.origin, originA());

        // recording upstream: the whole flow, through the browser's CORS checks
        const r = out.steps.recording;
        assert.equal(r.error, undefined, `fetch failed: ${JSON.stringify(r)}`);
        assert.equal(r.initStatus, 200, JSON.stringify(r));
        assert.match(r.sessionId || '', /^sess-\d+-[0-9a-f]+$/, `Mcp-Session-Id readable by the page: ${JSON.stringify(r)}`);
        assert.equal(r.serverName, 'recording-upstream');
        assert.equal(r.notifiedStatus, 202);
        assert.equal(r.callStatus, 200);
        assert.deepEqual(r.callResult?.result?.echo?.params, { name: 'echo', arguments: { message: marker('a') } }, JSON.stringify(r.callResult));
        assert.equal(r.callResult.result.echo.subject, 'browser-user');

        // what the upstream saw: the three POSTs of the flow (never the preflight), the session
        // id the page read sent back, the browser's Origin, no Authorization
        const seen = up.since(mark);
        assert.deepEqual(seen.map((q) => q.method), ['POST', 'POST', 'POST'], JSON.stringify(seen.map((q) => [q.method, q.url])));
        assert.deepEqual(seen.map((q) => JSON.parse(q.bodyText).method), ['initialize', 'notifications/initialized', 'tools/call']);
        for (const q of seen.slice(1)) assert.equal(q.headers['mcp-session-id'], r.sessionId);
        for (const q of seen) assert.equal(q.headers.authorization, undefined, 'the Bearer token is not forwarded');

        // the real server-everything behind the gateway (SSE answers, its own CORS headers dropped)
        const e = out.steps.everything;
        assert.equal(e.error, undefined, `fetch failed: ${JSON.stringify(e)}`);
        assert.equal(e.initStatus, 200, JSON.stringify(e));
        assert.match(e.sessionId || '', /^[0-9a-f-]{16,}$/i, JSON.stringify(e));
        assert.equal(e.callStatus, 200, JSON.stringify(e));
        const text = (e.callResult?.result?.content || []).map((c) => c.text).join('');
        assert.match(text, new RegExp(marker('a')), `echo tool result: ${JSON.stringify(e.callResult)}`);

        // a 401 is readable cross-origin, with its WWW-Authenticate (exposed)
        const n = out.steps.noToken;
        assert.equal(n.status, 401, JSON.stringify(n));
        assert.match(n.wwwAuthenticate || '', /^Bearer .*resource_metadata=/, JSON.stringify(n));

        // the gateway answered the preflights itself (204; Chromium sends one again when a request
        // adds a header, Mcp-Session-Id, that the cached grant did not cover), then every POST
        const log = await accessSince(logMark, 11);
        const show = JSON.stringify(log.map((l) => [l.method, l.route, l.status, l.rpc_method, l.reason]));
        const pre = log.filter((l) => l.method === 'OPTIONS');
        assert.deepEqual([...new Set(pre.map((l) => l.route))], ['/mcp', '/ev'], show);
        for (const l of pre) assert.equal(l.status, 204, show);
        assert.deepEqual(log.filter((l) => l.method !== 'OPTIONS').map((l) => [l.method, l.route, l.status, l.rpc_method]), [
            ['POST', '/mcp', 200, 'initialize'], ['POST', '/mcp', 202, 'notifications/initialized'], ['POST', '/mcp', 200, 'tools/call'],
            ['POST', '/ev', 200, 'initialize'], ['POST', '/ev', 202, 'notifications/initialized'], ['POST', '/ev', 200, 'tools/call'],
            ['POST', '/mcp', 401, null],
        ], show);
        assert.equal(log[0].method, 'OPTIONS', `the first request of the page is a preflight: ${show}`);
        for (const l of log.filter((x) => x.method === 'POST' && x.status < 300)) assert.equal(l.sub, 'browser-user');
    }));

    test('a disallowed origin: every fetch fails in the browser, the gateway answers 403, the upstream sees nothing', { skip }, T(async (t) => {
        const mark = up.mark();
        const logMark = accessMark();
        const sessions = state.sessions;
        const run = await dumpDom('denied', `${originB()}/page`);
        noLeftovers(t, run);
        const out = pageResults(run);
        assert.equal(out.origin, originB());
        for (const k of ['recording', 'everything', 'simple']) {
            const s = out.steps[k];
            assert.equal(s.error, 'TypeError', `${k}: fetch must fail with a CORS TypeError, got ${JSON.stringify(s)}`);
            assert.equal(s.sessionId, undefined, `${k}: no session id reached the page`);
        }
        assert.equal(up.since(mark).length, 0, `the upstream saw: ${JSON.stringify(up.since(mark).map((q) => [q.method, q.url, q.headers.origin]))}`);
        assert.equal(state.sessions, sessions, 'no session was created for the disallowed origin');

        // the gateway's own record: the two preflights and the simple POST refused with 403
        const log = await accessSince(logMark, 3);
        assert.deepEqual(log.map((l) => [l.method, l.route, l.status, l.decision]), [
            ['OPTIONS', '/mcp', 403, 'deny'],
            ['OPTIONS', '/ev', 403, 'deny'],
            ['POST', '/mcp', 403, 'deny'],
        ], JSON.stringify(log));
        assert.equal(log[2].reason, 'origin', JSON.stringify(log[2]));
    }));
});
