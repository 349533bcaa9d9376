// frontdoor-upstream.mjs -- helpers for the MCP front-door tests: an MCP-shaped handler for the
// recording upstream (upstream.mjs) that answers initialize with an Mcp-Session-Id, tools/list
// with a list the test sets (application/json), notifications with 202 and anything else with a
// result describing the request; an Ed25519 identity-signing key made with openssl; and a
// verifier for the X-MCP-Identity JWT.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

/* State the test changes between cases: the tools/list answer (an object put in result, or a
 * raw string sent as the whole body) and the session ids handed out. */
export class McpState {
    constructor() {
        this.sessions = 0;
        this.lastSession = null;
        this.toolsResult = { tools: [{ name: 'get-sum', inputSchema: { type: 'object' } }] };
        this.rawListBody = null; // (id) => string: the whole tools/list body, unchanged
        this.sseList = false; // answer tools/list as text/event-stream (one event) instead of JSON
        this.listContentType = null; // answer tools/list (JSON) under this Content-Type ('' = none)
    }

    nextSession() {
        this.sessions++;
        this.lastSession = `sess-${this.sessions}-${crypto.randomBytes(6).toString('hex')}`;
        return this.lastSession;
    }
}

function answer(msg, rec) {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return null;
    if (!('id' in msg) || msg.method === undefined) return null; // notification or response
    return {
        jsonrpc: '2.0',
        id: msg.id,
        result: { echo: { method: msg.method, params: msg.params ?? null, subject: rec.headers['x-mcp-subject'] ?? null } },
    };
}

/* handler(req, res, rec): an MCP server that answers application/json. */
export function mcpJson(state) {
    return (req, res, rec) => {
        const send = (status, body, headers = {}) => {
            const text = body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body);
            const h = { ...headers };
            if (text) h['Content-Type'] = 'application/json';
            h['Content-Length'] = Buffer.byteLength(text);
            res.writeHead(status, h);
            res.end(text);
        };
        if (rec.method === 'DELETE') return send(200, null);
        if (rec.method === 'GET') return send(405, null, { Allow: 'POST, DELETE' });
        let msg;
        try {
            msg = JSON.parse(rec.bodyText);
        } catch {
            return send(400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
        }
        if (Array.isArray(msg)) {
            const out = msg.map((m) => answer(m, rec)).filter(Boolean);
            return out.length ? send(200, out) : send(202, null);
        }
        if (msg.method === 'initialize') {
            return send(
                200,
                {
                    jsonrpc: '2.0',
                    id: msg.id,
                    result: {
                        protocolVersion: msg.params?.protocolVersion ?? '2025-06-18',
                        capabilities: { tools: {} },
                        serverInfo: { name: 'recording-upstream', version: '0' },
                    },
                },
                { 'Mcp-Session-Id': state.nextSession() },
            );
        }
        if (msg.method === 'tools/list') {
            const body = state.rawListBody
                ? state.rawListBody(msg.id)
                : JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: state.toolsResult });
            if (state.listContentType !== null) {
                const h = { 'Content-Length': Buffer.byteLength(body) };
                if (state.listContentType) h['Content-Type'] = state.listContentType;
                res.writeHead(200, h);
                res.end(body);
                return undefined;
            }
            if (!state.sseList) return send(200, body);
            const ev = `event: message\nid: ev-1\ndata: ${body}\n\n`;
            res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', 'Content-Length': Buffer.byteLength(ev) });
            res.end(ev);
            return undefined;
        }
        const a = answer(msg, rec);
        return a ? send(200, a) : send(202, null);
    };
}

/* An Ed25519 private key made with `openssl genpkey`: {key (PEM path), publicKey (KeyObject)}. */
export function ed25519Key(dir, name = 'identity-ed25519.pem') {
    const key = path.join(dir, name);
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key], { timeout: 10000, stdio: 'pipe' });
    fs.chmodSync(key, 0o600);
    return { key, publicKey: crypto.createPublicKey(fs.readFileSync(key)) };
}

/* Verify an EdDSA compact JWS with <publicKey>; returns {header, claims} or throws. */
export function verifyEdDsaJwt(jwt, publicKey) {
    const parts = String(jwt).split('.');
    if (parts.length !== 3) throw new Error(`not a compact JWS: ${jwt}`);
    const ok = crypto.verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], 'base64url'));
    if (!ok) throw new Error('X-MCP-Identity signature does not verify with the configured public key');
    return {
        header: JSON.parse(Buffer.from(parts[0], 'base64url').toString()),
        claims: JSON.parse(Buffer.from(parts[1], 'base64url').toString()),
    };
}

/* The claims of a JWT, unverified (to read a minted token's jti). */
export function jwtClaims(tok) {
    return JSON.parse(Buffer.from(tok.split('.')[1], 'base64url').toString());
}

/* Every value of header <name> in a recorded request (rawHeaders keeps duplicates). */
export function headerValues(rec, name) {
    const out = [];
    for (let i = 0; i < rec.rawHeaders.length; i += 2) {
        if (rec.rawHeaders[i].toLowerCase() === name.toLowerCase()) out.push(rec.rawHeaders[i + 1]);
    }
    return out;
}
