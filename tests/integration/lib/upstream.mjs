// upstream.mjs -- a controllable test upstream on loopback: records every request it receives
// (method, url, headers, body) and answers per path prefix: JSON, SSE with events sent on
// command, slow or never answering, reset or closed connections, chunked and close-delimited
// bodies. Default answer: 200 JSON describing the request.
import http from 'node:http';
import { deadline, sleep } from './procs.mjs';

export class Upstream {
    constructor({ keepAliveTimeout = 30000 } = {}) {
        this.requests = [];
        this.routes = []; // [prefix, handler]
        this.sockets = new Set();
        this.connections = 0;
        this.server = http.createServer({ keepAliveTimeout }, (req, res) => this.onRequest(req, res));
        this.server.on('connection', (s) => {
            s.itestId = ++this.connections;
            this.sockets.add(s);
            s.on('close', () => this.sockets.delete(s));
        });
        this.waiters = [];
    }

    /* opts.keepAliveTimeout: idle time after which the upstream closes a kept-alive connection. */
    static async start(opts = {}) {
        const up = new Upstream(opts);
        await new Promise((resolve, reject) => {
            up.server.once('error', reject);
            up.server.listen(0, '127.0.0.1', resolve);
        });
        up.port = up.server.address().port;
        return up;
    }

    url(p = '') {
        return `http://127.0.0.1:${this.port}${p}`;
    }

    /* Handler for every request whose URL path starts with <prefix> (the longest wins).
     * handler(req, res, rec, up) is called once the whole request body is in rec.body. */
    route(prefix, handler) {
        this.routes = this.routes.filter(([p]) => p !== prefix);
        this.routes.push([prefix, handler]);
        this.routes.sort((a, b) => b[0].length - a[0].length);
        return this;
    }

    clearRoutes() {
        this.routes = [];
    }

    /* Index for since(): requests received from now on. */
    mark() {
        return this.requests.length;
    }

    since(mark) {
        return this.requests.slice(mark);
    }

    /* Bounded wait until at least <n> requests were received in total. */
    async waitRequests(n, ms = 5000) {
        if (this.requests.length >= n) return this.requests;
        await deadline(
            new Promise((resolve) => this.waiters.push({ n, resolve })),
            ms,
            `upstream to receive ${n} requests (has ${this.requests.length})`,
        );
        return this.requests;
    }

    onRequest(req, res) {
        const rec = {
            method: req.method,
            url: req.url,
            httpVersion: req.httpVersion,
            headers: req.headers,
            rawHeaders: req.rawHeaders,
            conn: req.socket.itestId,
            body: Buffer.alloc(0),
            at: Date.now(),
        };
        this.requests.push(rec);
        this.waiters = this.waiters.filter((w) => {
            if (this.requests.length >= w.n) {
                w.resolve();
                return false;
            }
            return true;
        });
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('error', () => {});
        rec.complete = new Promise((resolve) => {
            req.on('end', () => {
                rec.body = Buffer.concat(chunks);
                rec.bodyText = rec.body.toString('utf8');
                resolve(rec);
                const path = req.url.split('?')[0];
                const r = this.routes.find(([p]) => path.startsWith(p));
                const handler = r ? r[1] : echoJson();
                Promise.resolve()
                    .then(() => handler(req, res, rec, this))
                    .catch((e) => {
                        try {
                            res.destroy(e);
                        } catch {
                            /* ignore */
                        }
                    });
            });
        });
    }

    async stop() {
        for (const s of this.sockets) s.destroy();
        this.server.closeAllConnections?.();
        await deadline(new Promise((r) => this.server.close(() => r())), 5000, 'upstream close');
    }
}

/* ---- handlers ---- */

/* 200 JSON {method, url, headers, body} describing the request. */
export function echoJson(status = 200, extraHeaders = {}) {
    return (req, res, rec) => {
        const body = JSON.stringify({ method: rec.method, url: rec.url, headers: rec.headers, body: rec.bodyText });
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...extraHeaders });
        res.end(body);
    };
}

export function json(status, obj, extraHeaders = {}) {
    return (req, res) => {
        const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
        res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...extraHeaders });
        res.end(body);
    };
}

/* Waits <ms> before answering with <then> (default echoJson). */
export function slow(ms, then = echoJson()) {
    return async (req, res, rec, up) => {
        await sleep(ms);
        if (!res.destroyed) return then(req, res, rec, up);
    };
}

/* Never answers (the socket stays open until the peer or stop() closes it). */
export function never() {
    return () => {};
}

/* Resets the TCP connection (RST) after reading the request. */
export function reset() {
    return (req) => {
        if (req.socket.resetAndDestroy) req.socket.resetAndDestroy();
        else req.socket.destroy();
    };
}

/* Closes the connection without writing anything. */
export function hangUp() {
    return (req) => req.socket.destroy();
}

/* Body in <parts> with Transfer-Encoding: chunked (one chunk per part, <gapMs> apart). */
export function chunked(parts, { gapMs = 20, contentType = 'application/json' } = {}) {
    return async (req, res) => {
        res.writeHead(200, { 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' });
        for (const p of parts) {
            res.write(p);
            await sleep(gapMs);
        }
        res.end();
    };
}

/* A close-delimited body: raw status line and headers with no Content-Length nor
 * Transfer-Encoding, the body in <parts>, then the connection is closed. */
export function closeDelimited(parts, { gapMs = 20, contentType = 'application/json' } = {}) {
    return async (req) => {
        const s = req.socket;
        s.write(`HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nConnection: close\r\n\r\n`);
        for (const p of parts) {
            s.write(p);
            await sleep(gapMs);
        }
        s.end();
    };
}

/* ---- SSE on command ---- */

/* One SSE response, driven by the test: `opened` resolves (with the request record) once the
 * response headers are written; send() writes one event and resolves when it was handed to the
 * kernel; end() finishes the response; destroy() closes the socket mid-stream; `closed`
 * resolves when the response's connection closed, with `aborted` true when that happened
 * before end() (the peer went away). */
export class SseControl {
    constructor({ status = 200, headers = {} } = {}) {
        this.status = status;
        this.headers = headers;
        this.res = null;
        this.ended = false;
        this.aborted = false;
        this.sent = 0;
        this.opened = new Promise((r) => (this._opened = r));
        this.closed = new Promise((r) => (this._closed = r));
    }

    handler() {
        return (req, res, rec) => {
            if (this.res) {
                res.writeHead(409, { 'Content-Type': 'text/plain' });
                res.end('SseControl already used');
                return;
            }
            this.res = res;
            res.on('close', () => {
                this.aborted = !this.ended;
                this._closed({ aborted: this.aborted, at: Date.now() });
            });
            res.writeHead(this.status, {
                'Content-Type': 'text/event-stream',
                'Cache-Control': 'no-cache',
                ...this.headers,
            });
            res.flushHeaders();
            this._opened(rec);
        };
    }

    /* Write one event; <data> is a string or an object (JSON-encoded). */
    send(data, { id, event } = {}) {
        if (!this.res) throw new Error('SSE stream not opened yet');
        const text = typeof data === 'string' ? data : JSON.stringify(data);
        let frame = '';
        if (event) frame += `event: ${event}\n`;
        if (id !== undefined) frame += `id: ${id}\n`;
        for (const line of text.split('\n')) frame += `data: ${line}\n`;
        frame += '\n';
        this.sent++;
        return new Promise((resolve, reject) => this.res.write(frame, (err) => (err ? reject(err) : resolve())));
    }

    end() {
        this.ended = true;
        this.res.end();
    }

    destroy() {
        this.res.socket?.destroy();
    }
}
