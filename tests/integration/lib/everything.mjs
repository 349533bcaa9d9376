// everything.mjs -- runs @modelcontextprotocol/server-everything in streamableHttp mode on a free
// loopback port (bind-loopback.cjs preloaded, minimal environment: its get-env tool prints it),
// waits for the port, stops it by PID.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTracked, stopChild } from './procs.mjs';
import { freePorts, waitForPort } from './ports.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const testsDir = path.resolve(here, '../..');
const preload = path.resolve(here, '../bind-loopback.cjs');
const entry = path.join(testsDir, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

export class Everything {
    async start() {
        [this.port] = await freePorts(1);
        this.stderr = '';
        this.stdout = '';
        this.child = spawnTracked(process.execPath, ['-r', preload, entry, 'streamableHttp'], {
            cwd: testsDir,
            env: { PATH: process.env.PATH || '/usr/bin:/bin', PORT: String(this.port) },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        this.child.stdout.setEncoding('utf8');
        this.child.stderr.setEncoding('utf8');
        this.child.stdout.on('data', (d) => (this.stdout = (this.stdout + d).slice(-65536)));
        this.child.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-65536)));
        const alive = () =>
            this.child.exitCode === null && this.child.signalCode === null
                ? null
                : `server-everything exited early: ${this.stderr}`;
        try {
            await waitForPort(this.port, { totalMs: 15000, alive });
        } catch (e) {
            await this.stop();
            throw e;
        }
        return this;
    }

    url(p = '/mcp') {
        return `http://127.0.0.1:${this.port}${p}`;
    }

    async stop() {
        if (this.child) await stopChild(this.child, { graceMs: 3000 });
    }
}

export async function startEverything() {
    return new Everything().start();
}
