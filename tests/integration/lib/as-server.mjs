// as-server.mjs -- a test OAuth authorization server (oidc-provider 9, adapted from
// shared/testbed/as-oidc-provider.mjs): RFC 8414 + OIDC discovery, JWKS, client_credentials with
// RFC 8707 resource indicators (JWT access tokens, aud = resource). Run as a child process by
// as.mjs on loopback only. TEST USE ONLY.
// Env: AS_PORT, AS_ISSUER, MCP_RESOURCES (comma-separated), AS_KEYS_FILE (private JWKS, created
// once), AT_ALG (RS256), MCP_SCOPES, AT_FORMAT (jwt; "opaque": opaque access tokens, for RFC 7662
// introspection by the client mcp-introspector / mcp-introspector-secret; introspection and
// revocation calls are counted, GET /test/introspections).
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.env.AS_PORT);
const ISSUER = process.env.AS_ISSUER || `http://127.0.0.1:${PORT}`;
const RESOURCES = (process.env.MCP_RESOURCES || '').split(',').map((s) => s.trim()).filter(Boolean);
const SCOPES = process.env.MCP_SCOPES || 'mcp:tools mcp:admin';
const AT_ALG = process.env.AT_ALG || 'RS256';
const KEYS_FILE = process.env.AS_KEYS_FILE;
const AT_FORMAT = process.env.AT_FORMAT === 'opaque' ? 'opaque' : 'jwt';

function makeKey(alg) {
    const kid = `${alg.toLowerCase()}-${crypto.randomBytes(4).toString('hex')}`;
    let kp;
    if (alg === 'RS256') kp = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    else if (alg === 'ES256') kp = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    else kp = crypto.generateKeyPairSync('ed25519');
    return { ...kp.privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}
let jwks;
if (fs.existsSync(KEYS_FILE)) jwks = JSON.parse(fs.readFileSync(KEYS_FILE, 'utf8'));
else {
    jwks = { keys: [makeKey('RS256'), makeKey('ES256')] };
    fs.writeFileSync(KEYS_FILE, JSON.stringify(jwks), { mode: 0o600 });
}

const provider = new Provider(ISSUER, {
    jwks,
    cookies: { keys: ['test-only-cookie-key-0123456789'] },
    scopes: ['openid', ...SCOPES.split(' ')],
    clients: [{
        client_id: 'mcp-cc', client_secret: 'mcp-cc-secret',
        grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
    }, {
        // the gateway's own credentials for RFC 7662 (it never asks for tokens)
        client_id: 'mcp-introspector', client_secret: 'mcp-introspector-secret',
        grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
    }],
    features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
            enabled: true,
            defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf[0] : RESOURCES[0]),
            useGrantedResource: async () => true,
            getResourceServerInfo: async (ctx, indicator) => {
                if (!RESOURCES.includes(indicator)) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
                return { scope: SCOPES, audience: indicator, accessTokenTTL: 600, accessTokenFormat: AT_FORMAT,
                    jwt: { sign: { alg: AT_ALG } } };
            },
        },
    },
    ttl: { ClientCredentials: 600 },
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const handler = provider.callback();
let jwksFetches = 0;
let introspections = 0;
http.createServer((req, res) => {
    if (req.url === '/jwks') jwksFetches++;
    if (req.url === '/token/introspection') introspections++;
    if (req.url === '/test/jwks-fetches') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ count: jwksFetches }));
        return;
    }
    if (req.url === '/test/introspections') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ count: introspections }));
        return;
    }
    handler(req, res);
}).listen(PORT, '127.0.0.1', () => console.log(`AS ready ${ISSUER}`));
