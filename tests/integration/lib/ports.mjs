// ports.mjs -- free loopback TCP ports (bind 127.0.0.1:0, read the port, close), and a bounded
// wait until something accepts connections on a port.
import net from 'node:net';
import { sleep } from './procs.mjs';

const handedOut = new Set();

export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

/* <n> distinct free ports, never one handed out before in this process. */
export async function freePorts(n) {
    const out = [];
    for (let tries = 0; out.length < n && tries < n * 20; tries++) {
        const p = await freePort();
        if (!handedOut.has(p) && !out.includes(p)) {
            handedOut.add(p);
            out.push(p);
        }
    }
    if (out.length < n) throw new Error(`could not find ${n} free ports`);
    return out;
}

/* Resolves true once one connection to host:port succeeds, false after <ms>. */
export function canConnect(port, host = '127.0.0.1', ms = 500) {
    return new Promise((resolve) => {
        const s = net.connect({ port, host });
        const t = setTimeout(() => {
            s.destroy();
            resolve(false);
        }, ms);
        s.once('connect', () => {
            clearTimeout(t);
            s.destroy();
            resolve(true);
        });
        s.once('error', () => {
            clearTimeout(t);
            resolve(false);
        });
    });
}

/* Poll every <everyMs> until <port> accepts, at most <totalMs>. <alive> (optional) is checked
 * each round: when it returns a string the wait stops with that error (child died). */
export async function waitForPort(port, { host = '127.0.0.1', totalMs = 10000, everyMs = 50, alive } = {}) {
    const until = Date.now() + totalMs;
    for (let i = 0; i < Math.ceil(totalMs / everyMs) + 1 && Date.now() < until; i++) {
        if (alive) {
            const err = alive();
            if (err) throw new Error(err);
        }
        if (await canConnect(port, host, 200)) return;
        await sleep(everyMs);
    }
    throw new Error(`nothing accepted connections on ${host}:${port} within ${totalMs} ms`);
}
