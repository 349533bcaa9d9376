// as.mjs -- authorization servers for the issuer tests: oidc-provider in a child process
// (as-server.mjs; keys generated once into the test's temp dir; started and stopped by PID) and
// a small in-process JWKS server whose key set the test changes and which counts fetches.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTracked, stopChild } from './procs.mjs';
import { waitForPort } from './ports.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export class OidcAS {
    /* port: loopback port; dir: temp dir for its keys; resources: RFC 8707 resources it serves;
     * scopes: the scopes it grants (space separated; as-server.mjs defaults to "mcp:tools mcp:admin");
     * format: "jwt" (default) or "opaque" access tokens (introspected, RFC 7662). */
    constructor({ port, dir, resources, alg = 'RS256', scopes, format }) {
        this.port = port;
        this.issuer = `http://127.0.0.1:${port}`;
        this.env = {
            PATH: process.env.PATH || '/usr/bin:/bin',
            AS_PORT: String(port),
            AS_ISSUER: this.issuer,
            MCP_RESOURCES: resources.join(','),
            AS_KEYS_FILE: path.join(dir, 'as-keys.json'),
            AT_ALG: alg,
        };
        if (scopes) this.env.MCP_SCOPES = scopes;
        if (format) this.env.AT_FORMAT = format;
        this.out = '';
    }

    async start() {
        this.child = spawnTracked(process.execPath, [path.join(HERE, 'as-server.mjs')], {
            cwd: HERE,
            env: this.env,
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        for (const s of [this.child.stdout, this.child.stderr]) {
            s.setEncoding('utf8');
            s.on('data', (d) => {
                if (this.out.length < 1 << 20) this.out += d;
            });
        }
        const alive = () => (this.child.exitCode === null ? null : `oidc-provider exited: ${this.out}`);
        await waitForPort(this.port, { totalMs: 15000, alive });
        return this;
    }

    async stop() {
        if (this.child) await stopChild(this.child, { graceMs: 3000 });
    }

    /* A client_credentials access token for <resource> (RFC 8707), or the error reply. */
    async token({ resource, scope = 'mcp:tools' }) {
        const body = new URLSearchParams({ grant_type: 'client_credentials', scope, resource });
        const r = await fetch(`${this.issuer}/token`, {
            method: 'POST',
            headers: {
                Authorization: `Basic ${Buffer.from('mcp-cc:mcp-cc-secret').toString('base64')}`,
                'Content-Type': 'application/x-www-form-urlencoded',
            },
            body,
            signal: AbortSignal.timeout(5000),
        });
        return { status: r.status, json: await r.json() };
    }

    /* RFC 7009: revoke <token> as its client (mcp-cc). */
    async revoke(token) {
        const r = await fetch(`${this.issuer}/token/revocation`, {
            method: 'POST',
            headers: {
                Authorization: `Basic ${Buffer.from('mcp-cc:mcp-cc-secret').toString('base64')}`,
                'Content-Type': 'application/x-www-form-urlencoded',
            },
            body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
            signal: AbortSignal.timeout(5000),
        });
        return r.status;
    }

    /* How many POST /token/introspection the server has received. */
    async introspections() {
        const r = await fetch(`${this.issuer}/test/introspections`, { signal: AbortSignal.timeout(5000) });
        return (await r.json()).count;
    }

    async jwksFetches() {
        const r = await fetch(`${this.issuer}/test/jwks-fetches`, { signal: AbortSignal.timeout(5000) });
        return (await r.json()).count;
    }
}

/* GET /jwks answers {"keys": [...]} with the public JWKs the test set (setKeys), with an
 * optional Cache-Control; every GET /jwks is counted (fetches, fetchTimes). Can be stopped and
 * started again on the same port (an outage). */
export class JwksServer {
    constructor() {
        this.keys = [];
        this.cacheControl = null;
        this.fetches = 0;
        this.fetchTimes = [];
        this.sockets = new Set();
        this.port = 0;
    }

    setKeys(keyPairs, { cacheControl } = {}) {
        this.keys = keyPairs.flatMap((k) => k.jwksJson.keys);
        if (cacheControl !== undefined) this.cacheControl = cacheControl;
    }

    url(p = '/jwks') {
        return `http://127.0.0.1:${this.port}${p}`;
    }

    async start(port = this.port) {
        this.server = http.createServer((req, res) => {
            if (req.url !== '/jwks') {
                res.statusCode = 404;
                res.end();
                return;
            }
            this.fetches++;
            this.fetchTimes.push(Date.now());
            res.setHeader('Content-Type', 'application/json');
            if (this.cacheControl) res.setHeader('Cache-Control', this.cacheControl);
            res.end(JSON.stringify({ keys: this.keys }));
        });
        this.server.on('connection', (s) => {
            this.sockets.add(s);
            s.on('close', () => this.sockets.delete(s));
        });
        await new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(port, '127.0.0.1', resolve);
        });
        this.port = this.server.address().port;
        return this;
    }

    async stop() {
        if (!this.server) return;
        for (const s of this.sockets) s.destroy();
        await new Promise((r) => this.server.close(r));
        this.server = null;
    }
}
