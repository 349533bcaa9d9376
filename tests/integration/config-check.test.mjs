// config-check.test.mjs -- `mcpgate -t -c FILE`: exit 0 on a good file; non-zero and every error
// as FILE:LINE on a broken one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { checkConfig, makeTempDir } from './lib/gateway.mjs';

const dir = makeTempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
function write(text) {
    const p = path.join(dir, `c${++n}.conf`);
    fs.writeFileSync(p, text);
    return p;
}

const GOOD = `workers 2;
listen 127.0.0.1:18080;
admin_listen 127.0.0.1:19090;
client_timeout 2s;
upstream_timeout 250ms;
max_body_size 64k;
max_header_size 8k;
drain_timeout 5s;
sse_keepalive off;
route /mcp { upstream http://127.0.0.1:3001/mcp; }
route /other {
    upstream http://127.0.0.1:3002;
}
`;

/* Run -t; output is stderr + stdout. */
function check(p) {
    const r = checkConfig(p);
    return { ...r, out: r.stderr + r.stdout };
}

test('a good file: exit 0', () => {
    const r = check(write(GOOD));
    assert.equal(r.code, 0, r.out);
});

test('a bad value: non-zero exit, FILE:LINE of the directive', () => {
    const p = write(GOOD.replace('client_timeout 2s;', 'client_timeout banana;'));
    const r = check(p);
    assert.notEqual(r.code, 0, 'must fail');
    assert.equal(r.signal, null, 'no crash');
    assert.ok(r.out.includes(`${p}:4`), `expected ${p}:4 in:\n${r.out}`);
});

test('an unknown directive: FILE:LINE', () => {
    const p = write(GOOD.replace('sse_keepalive off;', 'sse_keepalive off;\nfrobnicate yes;'));
    const r = check(p);
    assert.notEqual(r.code, 0);
    assert.ok(r.out.includes(`${p}:10`), `expected ${p}:10 in:\n${r.out}`);
    assert.match(r.out, /frobnicate/, 'names the directive');
});

test('several errors are all reported, each as FILE:LINE', () => {
    const p = write(GOOD.replace('max_body_size 64k;', 'max_body_size 12q;').replace('upstream_timeout 250ms;', 'upstream_timeout forever;'));
    const r = check(p);
    assert.notEqual(r.code, 0);
    assert.ok(r.out.includes(`${p}:5`), `expected ${p}:5 in:\n${r.out}`);
    assert.ok(r.out.includes(`${p}:6`), `expected ${p}:6 in:\n${r.out}`);
});

test('syntax errors: missing semicolon, unclosed block', () => {
    let p = write(GOOD.replace('drain_timeout 5s;', 'drain_timeout 5s'));
    let r = check(p);
    assert.notEqual(r.code, 0, 'missing ;');
    assert.match(r.out, new RegExp(`${p.replace(/[.]/g, '\\.')}:\\d+`), r.out);
    p = write(GOOD.replace('    upstream http://127.0.0.1:3002;\n}', '    upstream http://127.0.0.1:3002;\n'));
    r = check(p);
    assert.notEqual(r.code, 0, 'unclosed {');
    assert.match(r.out, new RegExp(`${p.replace(/[.]/g, '\\.')}(:\\d+)?`), r.out);
});

test('a route without upstream and a bad route path: FILE:LINE of the route', () => {
    const p = write(GOOD.replace('route /mcp { upstream http://127.0.0.1:3001/mcp; }', 'route /mcp { }\nroute /a/../b { upstream http://127.0.0.1:3001; }'));
    const r = check(p);
    assert.notEqual(r.code, 0);
    assert.ok(r.out.includes(`${p}:10`), `expected ${p}:10 in:\n${r.out}`);
    assert.ok(r.out.includes(`${p}:11`), `expected ${p}:11 in:\n${r.out}`);
});

test('a missing file: non-zero, the file is named', () => {
    const p = path.join(dir, 'does-not-exist.conf');
    const r = check(p);
    assert.notEqual(r.code, 0);
    assert.ok(r.out.includes(p), r.out);
});
