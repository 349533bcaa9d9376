// gateway.mjs -- runs the mcpgate binary under test: writes its config into a temp dir, starts
// it, waits for its listeners, captures stderr, sends SIGHUP, stops it by PID and checks that it
// exited 0 with no sanitizer report on stderr.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { spawnTracked, stopChild, withTimeout, sleep } from './procs.mjs';
import { waitForPort } from './ports.mjs';

const SANITIZER_RE = /ERROR: AddressSanitizer|runtime error:|LeakSanitizer/;
const STDERR_CAP = 4 * 1024 * 1024;

export function gatewayBin() {
    const bin = process.env.MCPGATE_BIN;
    if (!bin) {
        throw new Error(
            'MCPGATE_BIN is not set: point it at the built gateway, e.g. ' +
                'MCPGATE_BIN=$PWD/../build/mcpgate node --test integration/',
        );
    }
    const abs = path.resolve(bin);
    try {
        fs.accessSync(abs, fs.constants.X_OK);
    } catch {
        throw new Error(`MCPGATE_BIN=${bin}: not an executable file`);
    }
    return abs;
}

/* The environment given to the gateway: nothing secret, sanitizer options passed through. */
function gatewayEnv() {
    const env = { PATH: process.env.PATH || '/usr/bin:/bin' };
    for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) {
        if (process.env[k]) env[k] = process.env[k];
    }
    if (!env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = 'print_stacktrace=1';
    return env;
}

export function makeTempDir(prefix = 'mcpgate-itest-') {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/* Lines of <text> that are sanitizer reports. */
export function sanitizerLines(text) {
    return text.split('\n').filter((l) => SANITIZER_RE.test(l));
}

export class Gateway {
    /* opts.conf: config text. opts.ports: ports that must accept before start() returns
     * (default: every 127.0.0.1:N in the text's listen/admin_listen directives).
     * opts.dir: temp dir to use (created when absent). */
    constructor(opts) {
        this.bin = gatewayBin();
        this.dir = opts.dir || makeTempDir();
        this.confPath = path.join(this.dir, opts.confName || 'mcpgate.conf');
        this.conf = opts.conf;
        this.ports = opts.ports || listenPortsOf(opts.conf);
        this.child = null;
        this.stderrBuf = '';
        this.stdoutBuf = '';
        this.stopped = null;
        this.drainMs = opts.drainMs ?? 5000;
        // owner-only: a config holding a literal secret (redis password,
        // introspection_client_secret, upstream_authorization) is refused otherwise
        fs.writeFileSync(this.confPath, this.conf, { mode: 0o600 });
    }

    get pid() {
        return this.child?.pid;
    }

    get stderr() {
        return this.stderrBuf;
    }

    get running() {
        return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
    }

    async start({ totalMs = 10000 } = {}) {
        this.child = spawnTracked(this.bin, ['-c', this.confPath], {
            cwd: this.dir,
            env: gatewayEnv(),
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        this.child.stderr.setEncoding('utf8');
        this.child.stdout.setEncoding('utf8');
        this.child.stderr.on('data', (d) => {
            if (this.stderrBuf.length < STDERR_CAP) this.stderrBuf += d;
        });
        this.child.stdout.on('data', (d) => {
            if (this.stdoutBuf.length < STDERR_CAP) this.stdoutBuf += d;
        });
        const alive = () =>
            this.running
                ? null
                : `mcpgate exited early (code ${this.child.exitCode}, signal ${this.child.signalCode});` +
                  ` stderr:\n${this.stderrBuf}`;
        try {
            for (const p of this.ports) await waitForPort(p, { totalMs, alive });
        } catch (e) {
            await this.kill();
            e.message += `\n--- mcpgate stderr ---\n${this.stderrBuf}`;
            throw e;
        }
        return this;
    }

    /* Replace the config file (without signalling). */
    writeConfig(text) {
        this.conf = text;
        fs.writeFileSync(this.confPath, text);
    }

    hup() {
        process.kill(this.child.pid, 'SIGHUP');
    }

    /* Write <text> (when given), send SIGHUP, and wait until stderr has grown by a line that
     * matches <waitRe> (when given; bounded by <ms>), else just wait <settleMs>. */
    async reload(text, { waitRe = null, ms = 5000, settleMs = 500 } = {}) {
        if (text !== undefined && text !== null) this.writeConfig(text);
        const mark = this.stderrBuf.length;
        this.hup();
        if (waitRe) {
            const ok = await this.waitStderr(waitRe, ms, mark);
            if (!ok) throw new Error(`no stderr line matching ${waitRe} within ${ms} ms after SIGHUP`);
        } else {
            await sleep(settleMs);
        }
    }

    /* Bounded wait until the stderr captured after offset <from> matches <re>. */
    async waitStderr(re, ms = 5000, from = 0) {
        const until = Date.now() + ms;
        for (let i = 0; i < ms / 25 + 1 && Date.now() < until; i++) {
            if (re.test(this.stderrBuf.slice(from))) return true;
            if (!this.running) break;
            await sleep(25);
        }
        return re.test(this.stderrBuf.slice(from));
    }

    /* Stop by PID: SIGTERM, wait up to drain timeout + 2 s, then SIGKILL. Returns
     * {code, signal, ms, forced}. With check (default) throws unless exit code 0 with no
     * sanitizer lines. */
    async stop({ check = true, signal = 'SIGTERM', graceMs } = {}) {
        if (!this.child) return null;
        if (!this.stopped) {
            const t0 = Date.now();
            this.stopped = stopChild(this.child, { signal, graceMs: graceMs ?? this.drainMs + 2000 }).then(
                (r) => ({ ...r, ms: Date.now() - t0 }),
            );
        }
        const res = await this.stopped;
        // let the stderr pipe drain
        await withTimeout(new Promise((r) => this.child.stderr.once('close', r)), 1000);
        if (check) this.check(res);
        return res;
    }

    /* Throws when <res> (from stop) is not a clean exit or stderr has a sanitizer report. */
    check(res) {
        const problems = [];
        if (res.forced) problems.push('did not exit in time and was SIGKILLed');
        else if (res.code !== 0) problems.push(`exit code ${res.code}, signal ${res.signal}`);
        const san = sanitizerLines(this.stderrBuf);
        if (san.length) problems.push(`sanitizer report:\n  ${san.join('\n  ')}`);
        if (problems.length) {
            throw new Error(`mcpgate (pid ${this.pid}): ${problems.join('; ')}\n--- mcpgate stderr ---\n${this.stderrBuf}`);
        }
    }

    async kill() {
        if (this.child && this.running) {
            try {
                process.kill(this.child.pid, 'SIGKILL');
            } catch {
                /* gone */
            }
            await withTimeout(this.child.exited, 5000);
        }
    }

    removeDir() {
        try {
            fs.rmSync(this.dir, { recursive: true, force: true });
        } catch {
            /* ignore */
        }
    }
}

/* Ports of the 127.0.0.1:N listeners (listen and admin_listen) in a config text. */
export function listenPortsOf(text) {
    const out = [];
    const re = /^\s*(?:listen|admin_listen)\s+127\.0\.0\.1:(\d+)/gm;
    let m;
    while ((m = re.exec(text))) out.push(Number(m[1]));
    return out;
}

export async function startGateway(opts) {
    const gw = new Gateway(opts);
    await gw.start();
    return gw;
}

/* Run `mcpgate -t -c FILE` synchronously (bounded at 10 s). */
export function checkConfig(confPath) {
    const r = spawnSync(gatewayBin(), ['-t', '-c', confPath], {
        env: gatewayEnv(),
        encoding: 'utf8',
        timeout: 10000,
        cwd: path.dirname(confPath),
    });
    return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '' };
}

/* Wrap a test body so that, when it fails, the stderr of every gateway that <getGws> returns
 * is printed (the error is rethrown). */
export function showLogsOnFailure(getGws, fn) {
    return async (t) => {
        try {
            await fn(t);
        } catch (e) {
            const gws = [].concat(getGws()).filter(Boolean);
            for (const gw of gws) {
                process.stderr.write(
                    `\n--- mcpgate stderr (pid ${gw.pid}, last 8k) ---\n${gw.stderr.slice(-8192)}\n--- end ---\n`,
                );
            }
            throw e;
        }
    };
}

/* Standard base of the configs used by the tests; <extra> adds lines. */
export function baseConfig({ listen, admin, workers = 2, timeouts = {}, routes = [], extra = '' }) {
    const lines = [`workers ${workers};`];
    for (const l of [].concat(listen)) lines.push(typeof l === 'number' ? `listen 127.0.0.1:${l};` : l);
    if (admin) lines.push(`admin_listen 127.0.0.1:${admin};`);
    const t = {
        client_timeout: '5s',
        upstream_timeout: '5s',
        upstream_connect_timeout: '1s',
        drain_timeout: '5s',
        sse_keepalive: 'off',
        ...timeouts,
    };
    for (const [k, v] of Object.entries(t)) lines.push(`${k} ${v};`);
    for (const [p, u] of routes) lines.push(`route ${p} { upstream ${u}; }`);
    if (extra) lines.push(extra);
    return lines.join('\n') + '\n';
}
