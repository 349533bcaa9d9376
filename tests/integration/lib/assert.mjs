// assert.mjs -- shared assertions: the JSON-RPC error replies the gateway generates itself.
import assert from 'node:assert/strict';

/* <resp> has {status, headers, text}. Checks status, Content-Type application/json and the
 * body {"jsonrpc":"2.0","id":<id>,"error":{"code":<code>,"message":"..."}}. */
export function assertRpcError(resp, status, code, id = null, what = '') {
    const ctx = `${what ? what + ': ' : ''}got ${resp.status} ${JSON.stringify(resp.headers)} ${JSON.stringify(resp.text)}`;
    assert.equal(resp.status, status, `status; ${ctx}`);
    assert.match(resp.headers['content-type'] || '', /^application\/json\b/i, `content-type; ${ctx}`);
    let j;
    try {
        j = JSON.parse(resp.text);
    } catch {
        assert.fail(`body is not JSON; ${ctx}`);
    }
    assert.equal(j.jsonrpc, '2.0', `jsonrpc member; ${ctx}`);
    assert.ok('id' in j, `id member present; ${ctx}`);
    assert.deepEqual(j.id, id, `id; ${ctx}`);
    assert.equal(typeof j.error, 'object', `error member; ${ctx}`);
    assert.equal(j.error.code, code, `error.code; ${ctx}`);
    assert.equal(typeof j.error.message, 'string', `error.message; ${ctx}`);
    assert.ok(j.error.message.length > 0, `error.message not empty; ${ctx}`);
    assert.ok(!('result' in j), `no result member; ${ctx}`);
    return j;
}

export const RPC = { INVALID: -32600, NOT_FOUND: -32601, TIMEOUT408: -32000, BAD_GATEWAY: -32002, GW_TIMEOUT: -32004 };
