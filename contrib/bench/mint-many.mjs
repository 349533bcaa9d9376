// mint-many.mjs -- mint many RS256/ES256 access tokens with distinct jti, one per line, for contrib/bench/run.
//
// node mint-many.mjs --key key.pem --kid K --alg RS256 --iss ISS --aud AUD --sub SUB
//                    [--scope "a b"] [--ttl SECONDS] --count N > tokens.txt
// The header and claims have the shape mcpgate-token mint writes (typ at+jwt,
// iat, exp, jti); spawning mcpgate-token 20000 times is 4x slower than this.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
    options: {
        key: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string', default: 'RS256' },
        iss: { type: 'string' }, aud: { type: 'string' }, sub: { type: 'string', default: 'bench' },
        scope: { type: 'string' }, ttl: { type: 'string', default: '3600' },
        count: { type: 'string', default: '1' },
    },
});
for (const k of ['key', 'kid', 'iss', 'aud'])
    if (!o[k]) { console.error(`mint-many: --${k} is required`); process.exit(2); }
const hashes = { RS256: ['sha256', {}], ES256: ['sha256', { dsaEncoding: 'ieee-p1363' }] };
if (!hashes[o.alg]) { console.error('mint-many: --alg RS256 or ES256'); process.exit(2); }
const [hash, opts] = hashes[o.alg];
const key = createPrivateKey(readFileSync(o.key));
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const head = b64({ alg: o.alg, typ: 'at+jwt', kid: o.kid });
const now = Math.floor(Date.now() / 1000);
const count = Math.min(Math.max(parseInt(o.count, 10) || 1, 1), 1_000_000);
let buf = [];
for (let i = 0; i < count; i++) {
    const claims = { iss: o.iss, sub: o.sub, aud: o.aud, iat: now, exp: now + parseInt(o.ttl, 10),
                     jti: randomBytes(16).toString('hex') };
    if (o.scope) claims.scope = o.scope;
    const input = `${head}.${b64(claims)}`;
    const sig = sign(hash, Buffer.from(input), { key, ...opts }).toString('base64url');
    buf.push(`${input}.${sig}\n`);
    if (buf.length >= 1000) { writeSync(1, buf.join('')); buf = []; }
}
if (buf.length) writeSync(1, buf.join(''));
