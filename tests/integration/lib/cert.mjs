// cert.mjs -- a throwaway self-signed P-256 certificate for 127.0.0.1, made with openssl at test time.
import path from 'node:path';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

export function makeCert(dir) {
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
            '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
        { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 },
    );
    return { cert, key, certPem: fs.readFileSync(cert), keyPem: fs.readFileSync(key) };
}
