// memory.mjs -- the memory benchmark driver (run by contrib/bench/memory, which raises the open
// file limit and builds the gateway): the gateway's RSS per idle client connection and per open
// SSE stream, each phase on a fresh gateway process, everything on loopback, every wait bounded.
//
// node memory.mjs --bin PATH [-n N] [--sse-n N] [--workers W] [--concurrency C] [--json FILE]
// (node memory.mjs --upstream: the SSE upstream alone; prints "port N")
import net from 'node:net';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
};
const BIN = opt('--bin');
const N = Number(opt('-n', '10000'));
const N_SSE = Number(opt('--sse-n', String(N))); // fewer when the file limit cannot take N
const WORKERS = Number(opt('--workers', '2'));
const CONC = Number(opt('--concurrency', '256'));
const JSON_OUT = opt('--json', null);
const TARGET_SSE_KIB = 20;
if (args.includes('--upstream')) {
    upstreamMain();
} else if (!BIN || !fs.existsSync(BIN)) {
    console.error('memory.mjs: --bin PATH (the mcpgate binary) is required');
    process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();
function cleanup() {
    for (const c of children) {
        try {
            process.kill(c.pid, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

async function freePort() {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address();
    await new Promise((r) => s.close(r));
    return port;
}

/* VmRSS and RssAnon of <pid> in KiB (/proc/PID/status). */
function rss(pid) {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st) || [])[1] || 0);
    return { rss: get('VmRSS'), anon: get('RssAnon') };
}

function httpGet(port, p, ms = 5000) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: ms }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)));
        req.on('error', reject);
    });
}

async function gauge(admin, name) {
    const r = await httpGet(admin, '/metrics');
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(r.body);
    return m ? Number(m[1]) : NaN;
}

/* Poll until <fn>() is truthy; bounded. */
async function until(fn, ms, what) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
        last = await fn();
        if (last.ok) return last;
        await sleep(200);
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/* The tiny SSE upstream, in its own process (its descriptors do not count against the driver's):
 * GET answers 200 text/event-stream, one event, then stays open. */
async function startUpstream() {
    const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--upstream'], {
        stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    const port = await new Promise((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error('the upstream did not start')), 10000);
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (d) => {
            out += d;
            const m = /^port (\d+)/m.exec(out);
            if (m) {
                clearTimeout(t);
                resolve(Number(m[1]));
            }
        });
        child.once('exit', () => reject(new Error('the upstream exited')));
    });
    return {
        port,
        close: async () => {
            child.kill('SIGKILL');
            children.delete(child);
        },
    };
}

async function upstreamMain() {
    const sockets = new Set();
    const srv = http.createServer((req, res) => {
        if (req.method === 'GET' && /text\/event-stream/.test(req.headers.accept || '')) {
            res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
            res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n');
            return; // left open
        }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    srv.requestTimeout = 0;
    srv.headersTimeout = 60000;
    srv.keepAliveTimeout = 3600 * 1000;
    srv.maxHeadersCount = 100;
    srv.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });
    await new Promise((r) => srv.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, r));
    console.log(`port ${srv.address().port}`);
}

function configText(port, admin, upPort, limits) {
    return [
        `workers ${WORKERS};`,
        `listen 127.0.0.1:${port};`,
        `admin_listen 127.0.0.1:${admin};`,
        'log_level warn;',
        'access_log off;',
        'client_timeout 1h;',
        'upstream_timeout 1h;',
        'stream_idle_timeout 1h;',
        'sse_keepalive off;',
        ...(limits ? [`max_connections ${4 * N};`, `max_connections_per_client ${4 * N};`] : []),
        `route /mcp { upstream http://127.0.0.1:${upPort}/mcp; }`,
        '',
    ].join('\n');
}

async function startGateway(dir, upPort) {
    const port = await freePort();
    const admin = await freePort();
    const conf = path.join(dir, 'mcpgate.conf');
    // Connection limits (when this build has them) are raised so that they do not interfere.
    let limits = true;
    fs.writeFileSync(conf, configText(port, admin, upPort, true));
    if (spawnSync(BIN, ['-t', '-c', conf], { encoding: 'utf8', timeout: 10000 }).status !== 0) {
        limits = false;
        fs.writeFileSync(conf, configText(port, admin, upPort, false));
        const t = spawnSync(BIN, ['-t', '-c', conf], { encoding: 'utf8', timeout: 10000 });
        if (t.status !== 0) throw new Error(`config refused:\n${t.stderr}`);
    }
    const child = spawn(BIN, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
    children.add(child);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
        if (stderr.length < 65536) stderr += d;
    });
    child.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    await until(
        async () => ({ ok: (await httpGet(admin, '/healthz').catch(() => ({}))).status === 200 }),
        10000,
        'the gateway admin /healthz',
    );
    return {
        pid: child.pid,
        port,
        admin,
        limits,
        stderr: () => stderr,
        async stop() {
            try {
                process.kill(child.pid, 'SIGTERM');
            } catch {
                /* gone */
            }
            const r = await Promise.race([child.exited, sleep(15000).then(() => null)]);
            if (r === null) process.kill(child.pid, 'SIGKILL');
            children.delete(child);
            return r;
        },
    };
}

/* Run <fn>(i) for i in 0..n-1, <conc> at a time. */
async function pool(n, conc, fn) {
    let next = 0;
    const worker = async () => {
        while (next < n) await fn(next++);
    };
    await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

function connect(port, ms = 10000) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        const t = setTimeout(() => {
            s.destroy();
            reject(new Error('connect timed out'));
        }, ms);
        s.once('connect', () => {
            clearTimeout(t);
            resolve(s);
        });
        s.once('error', (e) => {
            clearTimeout(t);
            reject(e);
        });
    });
}

/* An SSE stream through the gateway; resolves once the first event arrived. */
function openSse(port, ms = 20000) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        let got = '';
        const t = setTimeout(() => {
            s.destroy();
            reject(new Error(`no SSE event within ${ms} ms (got ${JSON.stringify(got.slice(0, 200))})`));
        }, ms);
        s.setEncoding('latin1');
        s.once('connect', () =>
            s.write('GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n'),
        );
        const onData = (d) => {
            got += d;
            if (/^HTTP\/1\.1 (?!200)/.test(got)) {
                clearTimeout(t);
                s.destroy();
                reject(new Error(`stream refused: ${got.split('\r\n')[0]}`));
            } else if (got.includes('data: ')) {
                clearTimeout(t);
                s.off('data', onData);
                s.on('data', () => {}); // keep reading (nothing more is sent)
                resolve(s);
            }
        };
        s.on('data', onData);
        s.once('error', (e) => {
            clearTimeout(t);
            reject(e);
        });
    });
}

/* A few requests and streams first, so that lazily made state is not counted per connection. */
async function warmUp(gw) {
    for (let i = 0; i < 20; i++) await httpGet(gw.port, '/mcp/warm');
    const ss = [];
    for (let i = 0; i < 8; i++) ss.push(await openSse(gw.port));
    for (const s of ss) s.destroy();
    const cs = [];
    for (let i = 0; i < 8; i++) cs.push(await connect(gw.port));
    for (const c of cs) c.destroy();
    await until(async () => ({ ok: (await gauge(gw.admin, 'mcpgate_connections_open')) === 0 }), 10000, 'warm-up connections closed');
    await sleep(500);
}

async function phase(kind, upPort, dir) {
    const n = kind === 'idle' ? N : N_SSE;
    const gw = await startGateway(dir, upPort);
    const socks = [];
    try {
        await warmUp(gw);
        const before = rss(gw.pid);
        const t0 = Date.now();
        if (kind === 'idle') {
            await pool(n, CONC, async () => socks.push(await connect(gw.port)));
            await until(
                async () => {
                    const v = await gauge(gw.admin, 'mcpgate_connections_open');
                    return { ok: v >= n, v };
                },
                60000,
                `${n} open connections in mcpgate_connections_open`,
            );
        } else {
            await pool(n, CONC, async () => socks.push(await openSse(gw.port)));
            await until(
                async () => {
                    const v = await gauge(gw.admin, 'mcpgate_sse_streams_open');
                    return { ok: v >= n, v };
                },
                60000,
                `${n} open streams in mcpgate_sse_streams_open`,
            );
        }
        const setupMs = Date.now() - t0;
        await sleep(1000);
        const after = rss(gw.pid);
        const perKiB = (after.rss - before.rss) / n;
        const anonKiB = (after.anon - before.anon) / n;
        return { kind, n, before, after, perKiB, anonKiB, setupMs, limits: gw.limits };
    } finally {
        for (const s of socks) s.destroy();
        const r = await gw.stop();
        if (r && (r.code !== 0 || /AddressSanitizer|runtime error/.test(gw.stderr()))) {
            console.error(`mcpgate exited ${JSON.stringify(r)}; stderr:\n${gw.stderr().slice(-4000)}`);
        }
    }
}

async function main() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpgate-memory-'));
    const up = await startUpstream();
    const results = [];
    try {
        console.log(`mcpgate memory benchmark: ${N} idle connections, ${N_SSE} SSE streams, workers ${WORKERS}, ` +
            `${os.cpus().length} CPUs, ${BIN}`);
        for (const kind of ['idle', 'sse']) {
            const r = await phase(kind, up.port, dir);
            results.push(r);
            console.log(
                `${r.n} ${kind === 'idle' ? 'idle connections' : 'open SSE streams'}: RSS ${r.before.rss} -> ${r.after.rss} KiB, ` +
                    `${r.perKiB.toFixed(2)} KiB each (anonymous ${r.anonKiB.toFixed(2)} KiB), set up in ${r.setupMs} ms`,
            );
        }
    } finally {
        await up.close();
        fs.rmSync(dir, { recursive: true, force: true });
    }
    const sse = results.find((r) => r.kind === 'sse');
    const ok = sse.perKiB < TARGET_SSE_KIB;
    console.log(`target: under ${TARGET_SSE_KIB} KiB per open SSE stream: ${ok ? 'met' : 'NOT met'} ` +
        `(${sse.perKiB.toFixed(2)} KiB)`);
    if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify({ workers: WORKERS, results }, null, 2) + '\n');
    process.exitCode = ok ? 0 : 1;
}

if (!args.includes('--upstream')) {
    main().catch((e) => {
        console.error(`memory.mjs: ${e.stack || e.message}`);
        process.exitCode = 2;
    });
}
