// rawhttp.mjs -- a raw TCP/TLS HTTP/1.1 client: sends exact bytes and parses the responses that
// come back (status line, headers, Content-Length / chunked / close-delimited bodies, several
// pipelined responses in order), every wait bounded.
import net from 'node:net';
import tls from 'node:tls';

export class RawConn {
    constructor(sock) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.closed = false;
        this.error = null;
        this.notify = null;
        sock.on('data', (d) => {
            this.buf = Buffer.concat([this.buf, d]);
            this._wake();
        });
        sock.on('error', (e) => {
            this.error = e;
            this._wake();
        });
        sock.on('close', () => {
            this.closed = true;
            this._wake();
        });
    }

    /* Connect to 127.0.0.1:<port> (TLS when <tls> is an options object for tls.connect). */
    static connect(port, { host = '127.0.0.1', tls: tlsOpts = null, timeout = 5000 } = {}) {
        return new Promise((resolve, reject) => {
            const sock = tlsOpts
                ? tls.connect({ host, port, servername: undefined, ...tlsOpts })
                : net.connect({ host, port });
            const t = setTimeout(() => {
                sock.destroy();
                reject(new Error(`connect to ${host}:${port} timed out`));
            }, timeout);
            sock.once(tlsOpts ? 'secureConnect' : 'connect', () => {
                clearTimeout(t);
                resolve(new RawConn(sock));
            });
            sock.once('error', (e) => {
                clearTimeout(t);
                reject(e);
            });
        });
    }

    _wake() {
        const n = this.notify;
        this.notify = null;
        if (n) n();
    }

    /* Wait until <pred>() is true; false when the deadline passes or the socket closed first. */
    async _until(pred, until) {
        for (let i = 0; i < 100000; i++) {
            if (pred()) return true;
            if (this.closed || Date.now() >= until) return pred();
            await new Promise((resolve) => {
                const t = setTimeout(resolve, Math.max(1, until - Date.now()));
                this.notify = () => {
                    clearTimeout(t);
                    resolve();
                };
            });
        }
        return pred();
    }

    write(data) {
        return new Promise((resolve, reject) => {
            if (this.closed) return reject(new Error('socket closed'));
            this.sock.write(data, (e) => (e ? reject(e) : resolve()));
        });
    }

    /* Parse the next response. <method> is that of the request it answers (HEAD has no body).
     * Throws on timeout or when the connection closed before a whole response arrived. */
    async readResponse({ timeout = 5000, method = 'GET' } = {}) {
        const until = Date.now() + timeout;
        for (let interim = 0; interim < 10; interim++) {
            const headEnd = () => this.buf.indexOf('\r\n\r\n');
            if (!(await this._until(() => headEnd() >= 0, until))) {
                throw new Error(
                    this.closed
                        ? `connection closed before a response head (got ${JSON.stringify(this.buf.toString('latin1'))})`
                        : `no response head within ${timeout} ms (got ${JSON.stringify(this.buf.toString('latin1'))})`,
                );
            }
            const he = headEnd();
            const head = this.buf.subarray(0, he).toString('latin1');
            this.buf = this.buf.subarray(he + 4);
            const resp = parseHead(head);
            if (resp.status >= 100 && resp.status < 200) continue;
            const te = (resp.headers['transfer-encoding'] || '').toLowerCase();
            const cl = resp.headers['content-length'];
            if (method === 'HEAD' || resp.status === 204 || resp.status === 304) {
                resp.body = Buffer.alloc(0);
            } else if (te) {
                if (!/(^|,)\s*chunked\s*$/.test(te)) throw new Error(`unexpected transfer-encoding ${te}`);
                resp.body = await this._readChunked(until, timeout);
                resp.chunked = true;
            } else if (cl !== undefined) {
                const n = Number(cl);
                if (!Number.isInteger(n) || n < 0) throw new Error(`bad content-length ${cl}`);
                if (!(await this._until(() => this.buf.length >= n, until))) {
                    throw new Error(`body: wanted ${n} bytes, got ${this.buf.length} (${this.closed ? 'closed' : 'timeout'})`);
                }
                resp.body = this.buf.subarray(0, n);
                this.buf = this.buf.subarray(n);
            } else {
                if (!(await this._until(() => this.closed, until))) {
                    throw new Error(`close-delimited body: no close within ${timeout} ms`);
                }
                resp.body = this.buf;
                this.buf = Buffer.alloc(0);
                resp.closeDelimited = true;
            }
            resp.text = resp.body.toString('utf8');
            return resp;
        }
        throw new Error('too many interim responses');
    }

    async _readChunked(until, timeout) {
        const parts = [];
        for (let i = 0; i < 100000; i++) {
            const lineEnd = () => this.buf.indexOf('\r\n');
            if (!(await this._until(() => lineEnd() >= 0, until))) throw new Error(`chunk size line: timeout/closed`);
            const le = lineEnd();
            const line = this.buf.subarray(0, le).toString('latin1');
            const size = parseInt(line.split(';')[0].trim(), 16);
            if (!Number.isFinite(size) || !/^[0-9a-fA-F]+$/.test(line.split(';')[0].trim())) {
                throw new Error(`bad chunk size line ${JSON.stringify(line)}`);
            }
            this.buf = this.buf.subarray(le + 2);
            if (size === 0) {
                // trailers until an empty line
                for (let j = 0; j < 100; j++) {
                    if (!(await this._until(() => this.buf.indexOf('\r\n') >= 0, until))) throw new Error('chunked trailer: timeout/closed');
                    const te = this.buf.indexOf('\r\n');
                    const tl = this.buf.subarray(0, te).toString('latin1');
                    this.buf = this.buf.subarray(te + 2);
                    if (tl === '') return Buffer.concat(parts);
                }
                throw new Error('too many trailers');
            }
            if (!(await this._until(() => this.buf.length >= size + 2, until))) throw new Error(`chunk data: timeout/closed`);
            parts.push(this.buf.subarray(0, size));
            if (this.buf.subarray(size, size + 2).toString('latin1') !== '\r\n') throw new Error('chunk not followed by CRLF');
            this.buf = this.buf.subarray(size + 2);
        }
        throw new Error('too many chunks');
    }

    /* True once the peer closed the connection (within <ms>). */
    async waitClose(ms = 5000) {
        return this._until(() => this.closed, Date.now() + ms);
    }

    close() {
        this.sock.destroy();
    }
}

export function parseHead(head) {
    const lines = head.split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
    const headerList = [];
    const headers = {};
    for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i <= 0) throw new Error(`bad header line ${JSON.stringify(l)}`);
        const name = l.slice(0, i).toLowerCase();
        const value = l.slice(i + 1).trim();
        headerList.push([name, value]);
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    return {
        version: m[1],
        status: Number(m[2]),
        reason: m[3] || '',
        headers,
        headerList,
        count: (n) => headerList.filter(([k]) => k === n.toLowerCase()).length,
        json() {
            return JSON.parse(this.text);
        },
    };
}

/* Connect, send <data> (a string/Buffer, or an array of them written <gapMs> apart), read one
 * response, close. */
export async function rawRequest(port, data, { timeout = 5000, method, tls: tlsOpts, gapMs = 0 } = {}) {
    const c = await RawConn.connect(port, { tls: tlsOpts, timeout });
    try {
        for (const part of [].concat(data)) {
            await c.write(part);
            if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        }
        const m = method || /^([A-Z]+) /.exec(String([].concat(data)[0]))?.[1] || 'GET';
        const resp = await c.readResponse({ timeout, method: m });
        resp.conn = c;
        return resp;
    } finally {
        c.close();
    }
}

/* Builds request bytes: req('POST', '/mcp', {Host: 'x', ...}, body). Host defaults to
 * 127.0.0.1; Content-Length is added for a string body unless a framing header is given. */
export function req(method, target, headers = {}, body = null, version = 'HTTP/1.1') {
    const h = { ...headers };
    const names = Object.keys(h).map((k) => k.toLowerCase());
    if (!names.includes('host') && h.Host !== null) h.Host = '127.0.0.1';
    if (body !== null && !names.includes('content-length') && !names.includes('transfer-encoding')) {
        h['Content-Length'] = Buffer.byteLength(body);
    }
    let s = `${method} ${target} ${version}\r\n`;
    for (const [k, v] of Object.entries(h)) {
        if (v === null) continue;
        for (const vv of [].concat(v)) s += `${k}: ${vv}\r\n`;
    }
    s += '\r\n';
    return body === null ? s : s + body;
}
