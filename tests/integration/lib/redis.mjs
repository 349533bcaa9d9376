// redis.mjs -- a real redis-server for the tests: started on a free loopback port with no
// persistence, stopped (or paused with SIGSTOP) by PID; commands through redis-cli.
import { execFileSync } from 'node:child_process';
import { spawnTracked, stopChild } from './procs.mjs';
import { freePorts, waitForPort } from './ports.mjs';

export class Redis {
    constructor(port) {
        this.port = port;
        this.child = null;
        this.log = '';
    }

    /* Start on <port> (a fresh free port when absent); resolves once it accepts. */
    static async start(port) {
        const r = new Redis(port ?? (await freePorts(1))[0]);
        await r.start();
        return r;
    }

    async start() {
        this.child = spawnTracked('redis-server', [
            '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
            '--daemonize', 'no', '--protected-mode', 'no', '--loglevel', 'warning',
        ], { stdio: ['ignore', 'pipe', 'pipe'] });
        this.child.stdout.setEncoding('utf8');
        this.child.stderr.setEncoding('utf8');
        this.child.stdout.on('data', (d) => { this.log += d; });
        this.child.stderr.on('data', (d) => { this.log += d; });
        const child = this.child;
        await waitForPort(this.port, {
            totalMs: 10000,
            alive: () => (child.exitCode === null && child.signalCode === null ? null : `redis-server exited: ${this.log}`),
        });
        return this;
    }

    get running() {
        return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
    }

    /* Stop by PID (SIGTERM, then SIGKILL); a paused server is continued first. */
    async stop() {
        if (!this.running) return;
        try {
            process.kill(this.child.pid, 'SIGCONT');
        } catch {
            /* gone */
        }
        await stopChild(this.child, { graceMs: 5000 });
    }

    pause() {
        process.kill(this.child.pid, 'SIGSTOP');
    }

    resume() {
        process.kill(this.child.pid, 'SIGCONT');
    }

    /* One command through redis-cli; returns its raw output (trimmed). */
    cli(...args) {
        return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...args.map(String)], {
            encoding: 'utf8',
            timeout: 5000,
        }).trim();
    }

    keys(pattern) {
        const out = this.cli('--scan', '--pattern', pattern);
        return out ? out.split('\n') : [];
    }
}
