// sse.mjs -- an HTTP client for streamed responses: sends one request (node http, no agent
// pooling) and parses a text/event-stream body incrementally, recording each event with the
// time it arrived, so tests can prove events are relayed one by one.
import http from 'node:http';
import https from 'node:https';
import { deadline } from './procs.mjs';

export class Stream {
    constructor() {
        this.events = [];
        this.raw = '';
        this.ended = false;
        this.error = null;
        this.waiters = [];
        this.pending = '';
    }

    _wake() {
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w();
    }

    _feed(text) {
        this.raw += text;
        this.pending += text.replace(/\r\n?/g, '\n');
        for (let i = 0; i < 10000; i++) {
            const idx = this.pending.indexOf('\n\n');
            if (idx < 0) break;
            const block = this.pending.slice(0, idx);
            this.pending = this.pending.slice(idx + 2);
            const ev = { at: Date.now(), data: null, id: undefined, event: undefined, comment: false };
            const data = [];
            let any = false;
            for (const line of block.split('\n')) {
                if (line.startsWith(':')) continue;
                const c = line.indexOf(':');
                const field = c < 0 ? line : line.slice(0, c);
                let value = c < 0 ? '' : line.slice(c + 1);
                if (value.startsWith(' ')) value = value.slice(1);
                if (field === 'data') {
                    data.push(value);
                    any = true;
                } else if (field === 'id') ev.id = value;
                else if (field === 'event') ev.event = value;
            }
            if (!any) continue; // comments only / id-only blocks carry no event
            ev.data = data.join('\n');
            try {
                ev.json = ev.data ? JSON.parse(ev.data) : undefined;
            } catch {
                ev.json = undefined;
            }
            this.events.push(ev);
        }
        this._wake();
    }

    /* Bounded wait until <pred>(this) holds. */
    async until(pred, ms, what) {
        await deadline(
            (async () => {
                for (let i = 0; i < 100000; i++) {
                    if (pred(this)) return;
                    if (this.ended) {
                        if (pred(this)) return;
                        throw new Error(`stream ended before: ${what} (events: ${JSON.stringify(this.events.map((e) => e.data))})`);
                    }
                    await new Promise((r) => this.waiters.push(r));
                }
            })(),
            ms,
            `${what} (events so far: ${JSON.stringify(this.events.map((e) => e.data))})`,
        );
    }

    /* Wait until at least <n> data events arrived. */
    waitEvents(n, ms = 5000) {
        return this.until((s) => s.events.length >= n, ms, `${n} SSE events`);
    }

    waitEnd(ms = 5000) {
        return this.until((s) => s.ended, ms, 'end of stream');
    }

    close() {
        this.req?.destroy();
        this.res?.destroy();
    }
}

/* Send a request and resolve once the response head arrived; the body is parsed as SSE (when
 * the content type says so, else accumulated in .raw) in the background. opts: method, headers,
 * body, tls (options for https), timeout for the head. */
export function openStream(url, { method = 'GET', headers = {}, body = null, tls = null, timeout = 5000 } = {}) {
    const s = new Stream();
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    return deadline(
        new Promise((resolve, reject) => {
            const h = { ...headers };
            if (body !== null && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) {
                h['Content-Length'] = Buffer.byteLength(body);
            }
            const req = mod.request(
                { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: false, ...(tls || {}) },
                (res) => {
                    s.res = res;
                    s.status = res.statusCode;
                    s.headers = res.headers;
                    s.socket = res.socket;
                    s.headAt = Date.now();
                    if (typeof res.socket.getProtocol === 'function') {
                        s.tlsProtocol = res.socket.getProtocol();
                        s.alpnProtocol = res.socket.alpnProtocol;
                    }
                    res.setEncoding('utf8');
                    res.on('data', (d) => s._feed(d));
                    const fin = () => {
                        if (s.ended) return;
                        s.ended = true;
                        s.endedAt = Date.now();
                        s.complete = res.complete;
                        s._wake();
                    };
                    res.on('end', fin);
                    res.on('close', fin);
                    res.on('error', (e) => {
                        s.error = e;
                        fin();
                    });
                    resolve(s);
                },
            );
            s.req = req;
            req.on('error', (e) => {
                s.error = e;
                if (!s.res) reject(e);
                else {
                    s.ended = true;
                    s._wake();
                }
            });
            if (body !== null) req.write(body);
            req.end();
        }),
        timeout,
        `response head for ${method} ${url}`,
    ).catch((e) => {
        s.close();
        throw e;
    });
}

/* One plain request; resolves {status, headers, text, json} (body read fully, bounded). */
export async function request(url, opts = {}) {
    const s = await openStream(url, opts);
    try {
        await s.waitEnd(opts.bodyTimeout ?? 10000);
    } finally {
        s.close();
    }
    let j;
    try {
        j = JSON.parse(s.raw);
    } catch {
        j = undefined;
    }
    return { status: s.status, headers: s.headers, text: s.raw, json: j, events: s.events, stream: s };
}
