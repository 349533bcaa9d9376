// mcpgate-load.mjs -- MCP-aware load generator: N concurrent Streamable HTTP sessions against any MCP URL.
//
// Each session sends initialize, notifications/initialized, optionally opens
// the GET event stream and holds it, then loops: tools/call (with probability
// --call-ratio) or tools/list, until --duration or --requests is reached;
// then DELETE. Latency is measured from sending a request to the matching
// JSON-RPC response (SSE or JSON). Only node's standard library (fetch).
// Run `mcpgate-load --help` for the options.
import { execFileSync } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const HELP = `usage: mcpgate-load [options] URL
  URL                       the MCP endpoint, e.g. http://127.0.0.1:8080/mcp
  -c, --sessions N          concurrent MCP sessions (default 10, at most 10000)
  -d, --duration T          stop after T (e.g. 30s, 2m; default 10s, at most 24h)
  -n, --requests N          stop after N tools requests in all (default: no limit)
      --call-ratio R        fraction of tools/call among tools requests, 0..1 (default 0.8)
      --tool NAME           tool to call (default echo)
      --args JSON           its arguments (default {"message":"hello"})
      --streams             hold a GET event stream open in every session
      --protocol V          MCP protocol version (default 2025-06-18)
      --timeout T           per-request timeout (default 30s)
      --header 'K: V'       extra request header (repeatable)
      --no-delete           do not DELETE the sessions at the end
      --json                print the final report as JSON on stdout
  tokens (sent as Authorization: Bearer):
      --token T             one token for every session
      --token-file F        tokens, one a line, handed out to sessions in turn
      --mint-key PEM        mint tokens with mcpgate-token mint instead, with
      --mint-kid K --mint-alg ALG --mint-iss ISS --mint-aud AUD
      [--mint-sub SUB] [--mint-scope "a b"] [--mint-ttl 1h]
      --mint-per-session    mint one token per session (default: one for all)
      --mint-tool PATH      the mcpgate-token binary (default: $MCPGATE_TOKEN or mcpgate-token)
A progress line goes to stderr once per second; the report to stdout.`;

const die = (msg) => { process.stderr.write(`mcpgate-load: ${msg}\n`); process.exit(2); };

function duration(s, what) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s));
    if (!m) die(`invalid duration for ${what}: ${s}`);
    return Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2] || 's'];
}

let args;
try {
    args = parseArgs({
        allowPositionals: true,
        options: {
            sessions: { type: 'string', short: 'c', default: '10' },
            duration: { type: 'string', short: 'd', default: '10s' },
            requests: { type: 'string', short: 'n' },
            'call-ratio': { type: 'string', default: '0.8' },
            tool: { type: 'string', default: 'echo' },
            args: { type: 'string', default: '{"message":"hello"}' },
            streams: { type: 'boolean', default: false },
            protocol: { type: 'string', default: '2025-06-18' },
            timeout: { type: 'string', default: '30s' },
            header: { type: 'string', multiple: true, default: [] },
            'no-delete': { type: 'boolean', default: false },
            json: { type: 'boolean', default: false },
            token: { type: 'string' },
            'token-file': { type: 'string' },
            'mint-key': { type: 'string' }, 'mint-kid': { type: 'string' },
            'mint-alg': { type: 'string', default: 'ES256' }, 'mint-iss': { type: 'string' },
            'mint-aud': { type: 'string' }, 'mint-sub': { type: 'string', default: 'mcpgate-load' },
            'mint-scope': { type: 'string' }, 'mint-ttl': { type: 'string', default: '1h' },
            'mint-per-session': { type: 'boolean', default: false },
            'mint-tool': { type: 'string' },
            help: { type: 'boolean', short: 'h', default: false },
        },
    });
} catch (e) { die(`${e.message}\n${HELP}`); }
const o = args.values;
if (o.help) { process.stdout.write(HELP + '\n'); process.exit(0); }
if (args.positionals.length !== 1) die(`one URL is required\n${HELP}`);
const url = new URL(args.positionals[0]).href;
const nSessions = Math.min(Math.max(parseInt(o.sessions, 10) || 0, 1), 10000);
const durationMs = Math.min(duration(o.duration, '--duration'), 86400000);
const maxRequests = o.requests ? Math.max(parseInt(o.requests, 10) || 0, 1) : Infinity;
const callRatio = Math.min(Math.max(Number(o['call-ratio']), 0), 1);
if (Number.isNaN(callRatio)) die('--call-ratio wants a number 0..1');
const timeoutMs = duration(o.timeout, '--timeout');
let toolArgs;
try { toolArgs = JSON.parse(o.args); } catch { die('--args is not JSON'); }
const extra = {};
for (const h of o.header) {
    const i = h.indexOf(':');
    if (i < 1) die(`bad --header ${h}`);
    extra[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}

// ---- tokens ---------------------------------------------------------------------
function mint() {
    const tool = o['mint-tool'] || process.env.MCPGATE_TOKEN || 'mcpgate-token';
    for (const k of ['mint-kid', 'mint-iss', 'mint-aud'])
        if (!o[k]) die(`--${k} is required with --mint-key`);
    const a = ['mint', '--key', o['mint-key'], '--kid', o['mint-kid'], '--alg', o['mint-alg'],
               '--iss', o['mint-iss'], '--aud', o['mint-aud'], '--sub', o['mint-sub'], '--ttl', o['mint-ttl']];
    if (o['mint-scope']) a.push('--scope', o['mint-scope']);
    try {
        return execFileSync(tool, a, { encoding: 'utf8', timeout: 10000 }).trim();
    } catch (e) { die(`${tool} mint failed: ${e.stderr || e.message}`); }
}
let tokens = [];
if (o.token) tokens = [o.token];
else if (o['token-file']) tokens = readFileSync(o['token-file'], 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
else if (o['mint-key']) tokens = Array.from({ length: o['mint-per-session'] ? nSessions : 1 }, mint);
if ((o.token || o['token-file']) && tokens.length === 0) die('no token given');
const tokenFor = (i) => (tokens.length ? tokens[i % tokens.length] : null);

// ---- statistics -----------------------------------------------------------------------
// Latencies in ms; beyond RESERVOIR samples, reservoir sampling keeps memory bounded.
const RESERVOIR = 2_000_000;
class Lat {
    constructor() { this.a = new Float64Array(1024); this.n = 0; this.seen = 0; this.max = 0; this.sum = 0; }
    add(ms) {
        this.seen++; this.sum += ms; if (ms > this.max) this.max = ms;
        if (this.n < RESERVOIR) {
            if (this.n === this.a.length) { const b = new Float64Array(this.a.length * 2); b.set(this.a); this.a = b; }
            this.a[this.n++] = ms;
        } else {
            const j = Math.floor(Math.random() * this.seen);
            if (j < RESERVOIR) this.a[j] = ms;
        }
    }
    pct(ps) {
        const s = this.a.slice(0, this.n).sort();
        return ps.map((p) => (this.n ? s[Math.min(this.n - 1, Math.ceil((p / 100) * this.n) - 1)] : NaN));
    }
}
const lat = { all: new Lat(), 'tools/call': new Lat(), 'tools/list': new Lat(), init: new Lat() };
let window = new Lat(); // the last second, for the progress line
const errors = new Map(); // "HTTP 401", "JSON-RPC -32602", "timeout", "network: ..."
let issued = 0, done = 0, failed = 0, sessionsUp = 0, sessionsFailed = 0, streamsOpen = 0, streamEvents = 0;
const bump = (k) => errors.set(k, (errors.get(k) || 0) + 1);

// ---- one JSON-RPC exchange ---------------------------------------------------------------
const t0 = performance.now();
const deadline = t0 + durationMs;
const stopAll = new AbortController();
setMaxListeners(0, stopAll.signal); // one listener per request in flight
let stopping = false;

function headers(s, json = true) {
    const h = { Accept: 'application/json, text/event-stream', ...extra };
    if (json) h['Content-Type'] = 'application/json';
    if (s.token) h.Authorization = `Bearer ${s.token}`;
    if (s.id) { h['Mcp-Session-Id'] = s.id; h['MCP-Protocol-Version'] = o.protocol; }
    return h;
}

// Reads an SSE body until the event carrying the response with id `want` arrives.
async function readSse(body, want) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
        for (;;) {
            const { value, done: end } = await reader.read();
            if (end) break;
            buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
            let k;
            while ((k = buf.indexOf('\n\n')) >= 0) {
                const ev = buf.slice(0, k); buf = buf.slice(k + 2);
                const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
                if (!data) continue;
                let msg; try { msg = JSON.parse(data); } catch { continue; }
                for (const m of Array.isArray(msg) ? msg : [msg])
                    if (m && m.id === want && ('result' in m || 'error' in m)) return m;
            }
        }
    } finally { reader.cancel().catch(() => {}); }
    return null;
}

// Returns { ok, res, msg }; counts the error when not ok.
async function rpc(s, method, params, { notify = false } = {}) {
    const id = notify ? undefined : ++s.seq;
    const body = JSON.stringify({ jsonrpc: '2.0', ...(notify ? {} : { id }), method, ...(params ? { params } : {}) });
    const ac = new AbortController();
    const tm = setTimeout(() => ac.abort(new Error('timeout')), timeoutMs);
    const onStop = () => ac.abort(new Error('stopped'));
    stopAll.signal.addEventListener('abort', onStop, { once: true });
    try {
        const res = await fetch(url, { method: 'POST', headers: headers(s), body, signal: ac.signal });
        if (notify) {
            await res.arrayBuffer();
            if (res.status !== 202 && res.status !== 200) { bump(`HTTP ${res.status}`); return { ok: false, res }; }
            return { ok: true, res };
        }
        if (res.status !== 200) { await res.arrayBuffer().catch(() => {}); bump(`HTTP ${res.status}`); return { ok: false, res }; }
        const ct = res.headers.get('content-type') || '';
        const msg = ct.includes('text/event-stream') ? await readSse(res.body, id) : await res.json();
        if (!msg) { bump('no JSON-RPC response'); return { ok: false, res }; }
        if (msg.error) { bump(`JSON-RPC ${msg.error.code}`); return { ok: false, res, msg }; }
        if (msg.result && msg.result.isError) { bump('tool isError'); return { ok: false, res, msg }; }
        return { ok: true, res, msg };
    } catch (e) {
        if (stopping && !(ac.signal.reason && ac.signal.reason.message === 'timeout')) return { ok: false, stopped: true };
        const why = ac.signal.aborted && ac.signal.reason?.message === 'timeout' ? 'timeout' : `network: ${e.cause?.code || e.message}`;
        bump(why);
        return { ok: false };
    } finally {
        clearTimeout(tm);
        stopAll.signal.removeEventListener('abort', onStop);
    }
}

async function holdStream(s) {
    try {
        const res = await fetch(url, { method: 'GET', headers: { ...headers(s, false), Accept: 'text/event-stream' }, signal: stopAll.signal });
        if (res.status !== 200) { await res.arrayBuffer().catch(() => {}); bump(`GET stream HTTP ${res.status}`); return; }
        streamsOpen++;
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        try {
            for (;;) {
                const { value, done: end } = await reader.read();
                if (end) break;
                streamEvents += (dec.decode(value, { stream: true }).match(/\n\n/g) || []).length;
            }
        } finally { streamsOpen--; }
        if (!stopping) bump('GET stream closed early');
    } catch (e) {
        if (!stopping) bump(`GET stream: ${e.cause?.code || e.message}`);
    }
}

async function session(i) {
    const s = { i, token: tokenFor(i), id: null, seq: 0 };
    const t = performance.now();
    const init = await rpc(s, 'initialize', {
        protocolVersion: o.protocol, capabilities: {}, clientInfo: { name: 'mcpgate-load', version: '0.1.0' },
    });
    if (!init.ok) { if (!init.stopped) sessionsFailed++; return; }
    s.id = init.res.headers.get('mcp-session-id');
    const ack = await rpc(s, 'notifications/initialized', null, { notify: true });
    if (!ack.ok) { if (!ack.stopped) sessionsFailed++; return; }
    lat.init.add(performance.now() - t);
    sessionsUp++;
    const stream = o.streams && s.id ? holdStream(s) : null;
    while (!stopping && issued < maxRequests && performance.now() < deadline) {
        issued++;
        const call = Math.random() < callRatio;
        const a = performance.now();
        const r = call ? await rpc(s, 'tools/call', { name: o.tool, arguments: toolArgs })
                       : await rpc(s, 'tools/list', {});
        if (r.stopped) break;
        const ms = performance.now() - a;
        if (r.ok) { done++; lat.all.add(ms); lat[call ? 'tools/call' : 'tools/list'].add(ms); window.add(ms); }
        else failed++;
    }
    if (stream) stream.catch(() => {});
    return s;
}

// ---- run ---------------------------------------------------------------------------------
const tty = process.stderr.isTTY;
let lastDone = 0, lastT = t0;
const fmt = (x) => (Number.isNaN(x) ? '-' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const progress = setInterval(() => {
    const now = performance.now();
    const rate = ((done - lastDone) * 1000) / (now - lastT);
    const [p50, p99] = window.pct([50, 99]);
    const line = `[${((now - t0) / 1000).toFixed(0).padStart(4)}s] ${done} ok ${failed} failed  ${rate.toFixed(0)} req/s` +
        `  p50 ${fmt(p50)} ms  p99 ${fmt(p99)} ms  sessions ${sessionsUp}/${nSessions}` +
        (o.streams ? `  streams ${streamsOpen}` : '');
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
    lastDone = done; lastT = now; window = new Lat();
}, 1000);
// Hard stop: whatever hangs is aborted at the deadline (plus the request timeout at most).
const hard = setTimeout(() => { stopping = true; stopAll.abort(); }, durationMs + Math.min(timeoutMs, 5000));

process.stderr.write(`mcpgate-load: ${nSessions} sessions -> ${url} for ${durationMs / 1000}s` +
    (maxRequests < Infinity ? ` or ${maxRequests} requests` : '') +
    `, tools/call ${Math.round(callRatio * 100)}% (${o.tool}), ${tokens.length ? `${tokens.length} token(s)` : 'no token'}\n`);
const sessions = (await Promise.all(Array.from({ length: nSessions }, (_, i) => session(i)))).filter(Boolean);
const elapsed = (performance.now() - t0) / 1000;
stopping = true;
stopAll.abort();
clearInterval(progress);
if (tty) process.stderr.write('\n');
if (!o['no-delete']) {
    await Promise.all(sessions.filter((s) => s.id).map(async (s) => {
        try {
            const r = await fetch(url, { method: 'DELETE', headers: headers(s, false), signal: AbortSignal.timeout(5000) });
            await r.arrayBuffer();
        } catch { /* best effort */ }
    }));
}
clearTimeout(hard);

// ---- report ----------------------------------------------------------------------------------
const pcts = [50, 90, 99];
const latOf = (l) => { const [p50, p90, p99] = l.pct(pcts); return { count: l.seen, p50, p90, p99, max: l.n ? l.max : NaN, mean: l.seen ? l.sum / l.seen : NaN }; };
const report = {
    url, sessions: nSessions, sessions_up: sessionsUp, sessions_failed: sessionsFailed,
    seconds: +elapsed.toFixed(3), ok: done, failed, throughput: +(done / elapsed).toFixed(1),
    latency_ms: Object.fromEntries(['all', 'tools/call', 'tools/list', 'init'].map((k) => [k, latOf(lat[k])])),
    errors: Object.fromEntries([...errors].sort((a, b) => b[1] - a[1])),
    stream_events: o.streams ? streamEvents : undefined,
};
if (o.json) {
    process.stdout.write(JSON.stringify(report, (k, v) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2) + '\n');
} else {
    const out = [];
    out.push(`url          ${url}`);
    out.push(`sessions     ${sessionsUp} up, ${sessionsFailed} failed to initialize (of ${nSessions})`);
    out.push(`requests     ${done} ok, ${failed} failed in ${elapsed.toFixed(2)} s`);
    out.push(`throughput   ${report.throughput} req/s`);
    out.push(`latency ms   ${'count'.padStart(9)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}`);
    for (const [k, v] of Object.entries(report.latency_ms))
        if (v.count) out.push(`  ${k.padEnd(10)} ${String(v.count).padStart(9)} ${fmt(v.p50).padStart(8)} ${fmt(v.p90).padStart(8)} ${fmt(v.p99).padStart(8)} ${fmt(v.max).padStart(8)}`);
    out.push(`errors       ${errors.size ? '' : 'none'}`);
    for (const [k, v] of Object.entries(report.errors)) out.push(`  ${k.padEnd(30)} ${v}`);
    if (o.streams) out.push(`GET streams  ${streamEvents} events received`);
    process.stdout.write(out.join('\n') + '\n');
}
process.exit(failed || sessionsFailed ? 1 : 0);
