// The HTTP API's API keys and the security routes, driven with fetch and with `tributary ctl`
// against a real node: users of the built-in database and built-in authorization rules change
// what MQTT clients may do while they run.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { BIN, BrokerProcess, startBroker } from '../helpers/broker';
import { connackCode, connect, end } from '../helpers/clients';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'tributary-api-auth-'));
const keys = join(dir, 'api_keys');
writeFileSync(keys, '# key:secret\nops:s3cret-ops\n');
let b: BrokerProcess;
let api: string;
const basic = (k: string, s: string): string => `Basic ${Buffer.from(`${k}:${s}`).toString('base64')}`;
const AUTH = basic('ops', 's3cret-ops');

before(async () => {
  b = await startBroker({
    env: {
      TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys,
      TRIBUTARY_AUTHENTICATION: JSON.stringify([{ mechanism: 'password_based', backend: 'built_in_database' }]),
      TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'built_in_database' }]),
    },
  });
  api = `http://127.0.0.1:${b.httpPort}`;
});
after(async () => {
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, auth = AUTH): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${api}/api/v5${path}`, { method, headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** `tributary ctl ...`: the key from the same configuration the node reads (api_key.bootstrap_file), the URL given. */
async function ctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'ctl', ...args, '--url', api], { env: { ...process.env, TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys }, timeout: 20_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

const refusal = (opts: mqtt.IClientOptions): Promise<number> => connackCode(b.url, opts);

describe('API keys', () => {
  it('every route but /status needs a key; 401 bodies say which; unknown paths are 404', async () => {
    assert.equal((await fetch(`${api}/status`)).status, 200);
    const none = await fetch(`${api}/api/v5/authentication`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { code: string }).code, 'AUTHORIZATION_HEADER_ERROR');
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="tributary"');
    assert.deepEqual((await call('GET', '/authentication', undefined, basic('ops', 'wrong'))).json, { code: 'BAD_API_KEY_OR_SECRET', message: 'Check api_key/api_secret' });
    assert.equal((await call('GET', '/authentication', undefined, basic('nobody', 's3cret-ops'))).status, 401);
    assert.deepEqual(await call('GET', '/no/such/thing'), { status: 404, json: { code: 'NOT_FOUND', message: 'Request Path Not Found' } });
    assert.deepEqual((await call('GET', '/authentication')).json, [{ id: 'password_based:built_in_database', enable: true }]);
  });

  it('tributary ctl says clearly when the key is wrong or the API unreachable', async () => {
    const wrong = await ctl('users', 'list', '--key', 'ops', '--secret', 'nope');
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /refused the API key \(BAD_API_KEY_OR_SECRET/);
    const { stderr } = await run(process.execPath, [BIN, 'ctl', 'status', '--url', 'http://127.0.0.1:1']).catch((e: { stderr: string }) => e);
    assert.match(stderr, /cannot reach the HTTP API at http:\/\/127.0.0.1:1/);
    assert.match((await ctl('--help')).out, /users add <user_id> <password>/);
  });
});

describe('users and rules through the API', () => {
  it('a user added with tributary ctl connects; deleted, it is refused', async () => {
    assert.equal(await refusal({ username: 'alice', password: 'pw-1' }), 5);
    assert.deepEqual(await ctl('users', 'add', 'alice', 'pw-1'), { code: 0, out: 'ok\n', err: '' });
    assert.equal((await ctl('users', 'add', 'alice', 'pw-1')).code, 1, 'adding twice is an error');
    await ctl('users', 'add', 'root', 'pw-root', '--superuser');
    assert.equal((await ctl('users', 'list')).out, 'alice\nroot (superuser)\n');
    const alice = await connect(b.url, { username: 'alice', password: 'pw-1' });
    await end(alice);
    assert.equal(await refusal({ username: 'alice', password: 'wrong' }), 4);
    assert.equal((await ctl('users', 'delete', 'alice')).out, 'ok\n');
    assert.equal(await refusal({ username: 'alice', password: 'pw-1' }), 5);
    assert.match((await ctl('users', 'delete', 'alice')).err, /USER_NOT_FOUND/);
  });

  it('validation errors name the field; paging follows EMQX', async () => {
    assert.deepEqual(await call('POST', '/authentication/password_based:built_in_database/users', { user_id: 'bob' }), { status: 400, json: { code: 'INVALID_ARGUMENT', message: 'password: a non-empty string is required' } });
    assert.equal((await call('POST', '/authentication/jwt/users', { user_id: 'bob', password: 'x' })).status, 404);
    assert.deepEqual((await call('GET', '/authentication/password_based:built_in_database/users?page=0')).json, { code: 'INVALID_PARAMETER', message: 'page_limit_invalid' });
    for (const id of ['u1', 'u2', 'u3']) assert.equal((await call('POST', '/authentication/password_based:built_in_database/users', { user_id: id, password: 'p' })).status, 201);
    const page = (await call('GET', '/authentication/password_based:built_in_database/users?page=2&limit=2')).json as { data: { user_id: string }[]; meta: Record<string, unknown> };
    assert.deepEqual(page.data.map((u) => u.user_id), ['u2', 'u3'], 'root, u1 | u2, u3');
    assert.deepEqual(page.meta, { page: 2, limit: 2, count: 4, hasnext: false });
  });

  it('built-in rules added while a client is connected apply to its next publish (the cache is cleared)', async () => {
    await call('POST', '/authentication/password_based:built_in_database/users', { user_id: 'dev', password: 'pw' });
    const dev = await connect(b.url, { protocolVersion: 5, username: 'dev', password: 'pw' });
    await dev.publishAsync('t/1', 'a', { qos: 1 });
    const set = await call('POST', '/authorization/sources/built_in_database/rules/users', [{ username: 'dev', rules: [{ permission: 'deny', action: 'publish', topic: 't/#' }] }]);
    assert.equal(set.status, 204);
    await assert.rejects(dev.publishAsync('t/1', 'b', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87);
    assert.deepEqual((await call('GET', '/authorization/sources/built_in_database/rules/users/dev')).json, { username: 'dev', rules: [{ permission: 'deny', action: 'publish', topic: 't/#' }] });
    const bad = await call('POST', '/authorization/sources/built_in_database/rules/users', [{ username: 'dev', rules: [{ permission: 'maybe', topic: 'x' }] }]);
    assert.equal(bad.status, 400);
    assert.match((bad.json as { message: string }).message, /permission/);
    assert.equal((await call('DELETE', '/authorization/sources/built_in_database/rules/users/dev')).status, 204);
    await dev.publishAsync('t/1', 'c', { qos: 1 });
    await end(dev);
  });

  it('a ban added with tributary ctl disconnects the client at once and refuses it; deleted, it may connect', async () => {
    await call('POST', '/authentication/password_based:built_in_database/users', { user_id: 'eve', password: 'pw' });
    const eve = await connect(b.url, { protocolVersion: 5, clientId: 'eve-1', username: 'eve', password: 'pw' });
    const kicked = new Promise<number | undefined>((resolve) => eve.once('disconnect', (p) => resolve(p.reasonCode)));
    assert.equal((await ctl('banned', 'add', 'clientid', 'eve-1', '--reason', 'stolen')).out, 'ok\n');
    assert.equal(await kicked, 0x98);
    assert.equal(await refusal({ protocolVersion: 5, clientId: 'eve-1', username: 'eve', password: 'pw' }), 0x8a);
    assert.match((await ctl('banned', 'list')).out, /^clientid\s+eve-1 {2}until=infinity {2}reason=stolen\n$/);
    const dup = await call('POST', '/banned', { as: 'clientid', who: 'eve-1' });
    assert.deepEqual([dup.status, (dup.json as { code: string }).code], [409, 'ALREADY_EXISTS']);
    assert.equal((await call('POST', '/banned', { as: 'clientid', who: 'x', until: '2001-01-01T00:00:00Z' })).status, 400);
    assert.equal((await ctl('banned', 'delete', 'clientid', 'eve-1')).out, 'ok\n');
    assert.equal((await call('DELETE', '/banned/clientid/eve-1')).status, 404);
    const back = await connect(b.url, { protocolVersion: 5, clientId: 'eve-1', username: 'eve', password: 'pw' });
    await end(back, eve);
  });
});
