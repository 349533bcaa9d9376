// tokens.mjs -- keys and access tokens for the tests: mcpgate-token (the tool users get) makes
// key pairs and mints tokens; hostile tokens (alg none, HMAC keyed with the public key, edited
// payloads) are built here by hand, because no honest tool makes them.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function tokenBin() {
    const bin = process.env.MCPGATE_TOKEN_BIN
        || (process.env.MCPGATE_BIN && path.join(path.dirname(process.env.MCPGATE_BIN), 'mcpgate-token'));
    if (!bin || !fs.existsSync(bin)) {
        throw new Error('set MCPGATE_TOKEN_BIN (or MCPGATE_BIN next to mcpgate-token)');
    }
    return bin;
}

function run(args) {
    return execFileSync(tokenBin(), args, { encoding: 'utf8', timeout: 10000 }).trim();
}

/* A key pair in <dir>: {alg, kid, key (PEM path), jwks (path), jwksJson (parsed)}. */
export function keygen(dir, alg, kid) {
    const key = path.join(dir, `${kid}.pem`);
    const jwks = path.join(dir, `${kid}.jwks.json`);
    run(['keygen', '--alg', alg, '--kid', kid, '--key', key, '--jwks', jwks]);
    return { alg, kid, key, jwks, jwksJson: JSON.parse(fs.readFileSync(jwks, 'utf8')) };
}

/* Write a JWKS file holding the public keys of <keys> (rotation: several keys at once). */
export function writeJwks(file, keys) {
    fs.writeFileSync(file, JSON.stringify({ keys: keys.flatMap((k) => k.jwksJson.keys) }));
    return file;
}

/* Mint with mcpgate-token. claims: {iss, aud, sub, scope, clientId, ttl, typ, extra: {name: value}} */
export function mint(k, { iss, aud, sub = 'user-1', scope, clientId, ttl = '1h', typ, extra = {} }) {
    const args = ['mint', '--key', k.key, '--kid', k.kid, '--alg', k.alg, '--iss', iss, '--aud', aud,
        '--sub', sub, '--ttl', String(ttl)];
    if (scope !== undefined) args.push('--scope', scope);
    if (clientId !== undefined) args.push('--client-id', clientId);
    if (typ !== undefined) args.push('--typ', typ);
    for (const [n, v] of Object.entries(extra)) args.push('--claim', `${n}=${JSON.stringify(v)}`);
    return run(args);
}

const b64u = (buf) => Buffer.from(buf).toString('base64url');

/* An unsigned token (alg none, empty signature): the oldest JWT attack. */
export function algNoneToken(payload) {
    return `${b64u(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${b64u(JSON.stringify(payload))}.`;
}

/* HS256 "signed" with the issuer's public key as the secret: algorithm confusion. */
export function hmacWithPublicKey(k, payload) {
    const pem = crypto.createPublicKey(fs.readFileSync(k.key)).export({ type: 'spki', format: 'pem' });
    const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: k.kid }));
    const body = b64u(JSON.stringify(payload));
    const sig = crypto.createHmac('sha256', pem).update(`${head}.${body}`).digest();
    return `${head}.${body}.${b64u(sig)}`;
}

/* The same signature over an edited payload (e.g. another sub): must fail the signature check. */
export function tamper(token, edit) {
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    return `${h}.${b64u(JSON.stringify(edit(claims)))}.${s}`;
}
