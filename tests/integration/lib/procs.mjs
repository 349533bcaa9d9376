// procs.mjs -- spawns child processes, keeps a registry of them and kills every one still
// running when the test process exits (even after a failure or an uncaught error).
import { spawn } from 'node:child_process';

const live = new Set();
let hooked = false;

function hook() {
    if (hooked) return;
    hooked = true;
    process.on('exit', () => {
        for (const child of live) {
            try {
                process.kill(child.pid, 'SIGKILL');
            } catch {
                /* already gone */
            }
        }
    });
}

/* spawn() that records the child; it leaves the registry when it exits. The returned child
 * carries `exited`: a promise of {code, signal}. */
export function spawnTracked(cmd, args, opts) {
    hook();
    const child = spawn(cmd, args, opts);
    live.add(child);
    child.exited = new Promise((resolve) => {
        child.once('exit', (code, signal) => {
            live.delete(child);
            resolve({ code, signal });
        });
        child.once('error', (err) => {
            live.delete(child);
            resolve({ code: null, signal: null, error: err });
        });
    });
    return child;
}

/* Wait for a promise at most <ms>; resolves to the value or to <onTimeout>. */
export function withTimeout(promise, ms, onTimeout = undefined) {
    let timer;
    return Promise.race([
        promise.finally(() => clearTimeout(timer)),
        new Promise((resolve) => {
            timer = setTimeout(() => resolve(onTimeout), ms);
        }),
    ]);
}

/* Like withTimeout but rejects with <what> in the message. */
export function deadline(promise, ms, what) {
    let timer;
    return Promise.race([
        promise.finally(() => clearTimeout(timer)),
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
        }),
    ]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Stop a child by PID: <signal>, wait up to <graceMs>, then SIGKILL (and wait up to 5 s more). */
export async function stopChild(child, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
    if (child.exitCode !== null || child.signalCode !== null) return child.exited;
    try {
        process.kill(child.pid, signal);
    } catch {
        /* gone */
    }
    const res = await withTimeout(child.exited, graceMs, null);
    if (res) return res;
    try {
        process.kill(child.pid, 'SIGKILL');
    } catch {
        /* gone */
    }
    const killed = await withTimeout(child.exited, 5000, { code: null, signal: 'SIGKILL' });
    return { ...killed, forced: true };
}
