// Security scaled out over a real Kafka: users, rules and bans live in compacted tables, so a
// change made through one gateway's API applies on the other gateway within a second or so.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { BrokerProcess, kafkaNodeEnv, startBroker } from '../helpers/broker';
import { connackCode as codeAt, connect, end } from '../helpers/clients';
import { waitUntil } from '../helpers/util';

const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `a${process.pid}x${Date.now()}.`;
const dir = mkdtempSync(join(tmpdir(), 'tributary-auth-cluster-'));
const keys = join(dir, 'api_keys');
writeFileSync(keys, 'ops:ops-secret\n');
const AUTH = `Basic ${Buffer.from('ops:ops-secret').toString('base64')}`;
const env = (name: string): Record<string, string> =>
  kafkaNodeEnv(name, prefix, {
    TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys,
    TRIBUTARY_AUTHENTICATION: JSON.stringify([{ mechanism: 'password_based', backend: 'built_in_database' }]),
    TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'built_in_database' }]),
  });

/** The CONNACK code a client of `on` gets (0 = accepted). */
const connackCode = (on: BrokerProcess, opts: mqtt.IClientOptions): Promise<number> => codeAt(on.url, opts);

let router: BrokerProcess;
let a: BrokerProcess;
let b: BrokerProcess;

before(async () => {
  assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
  router = await startBroker({ command: 'router', env: kafkaNodeEnv('router', prefix) });
  [a, b] = await Promise.all([startBroker({ command: 'gateway', env: env('gw-a') }), startBroker({ command: 'gateway', env: env('gw-b') })]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await router?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function call(on: BrokerProcess, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${on.httpPort}/api/v5${path}`, { method, headers: { authorization: AUTH, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}


describe('security over Kafka, two gateways', () => {
  it('a user added through gateway A is accepted on gateway B, and deleted there too', async () => {
    assert.equal(await connackCode(b, { username: 'carol', password: 'pw' }), 5);
    assert.equal(await call(a, 'POST', '/authentication/password_based:built_in_database/users', { user_id: 'carol', password: 'pw' }), 201);
    await waitUntil(async () => (await connackCode(b, { username: 'carol', password: 'pw' })) === 0, 'gateway B to accept carol', 10_000);
    assert.equal(await call(b, 'DELETE', '/authentication/password_based:built_in_database/users/carol'), 204);
    await waitUntil(async () => (await connackCode(a, { username: 'carol', password: 'pw' })) === 5, 'gateway A to refuse carol', 10_000);
  });

  it('a rule set through gateway B applies to a client connected to gateway A', async () => {
    assert.equal(await call(a, 'POST', '/authentication/password_based:built_in_database/users', { user_id: 'dave', password: 'pw' }), 201);
    await waitUntil(async () => (await connackCode(a, { username: 'dave', password: 'pw' })) === 0, 'dave on A', 10_000);
    const dave = await connect(a.url, { protocolVersion: 5, username: 'dave', password: 'pw' });
    await dave.publishAsync('plant/1', 'ok', { qos: 1 });
    assert.equal(await call(b, 'POST', '/authorization/sources/built_in_database/rules/users', [{ username: 'dave', rules: [{ permission: 'deny', action: 'publish', topic: 'plant/#' }] }]), 204);
    await waitUntil(
      () => dave.publishAsync('plant/1', 'x', { qos: 1 }).then(() => false, (e: Error & { code?: number }) => e.code === 0x87),
      "gateway A to apply B's rule",
      10_000,
    );
    await end(dave);
  });

  it('a ban added through gateway B disconnects a client on gateway A at once and refuses it there', async () => {
    assert.equal(await call(a, 'POST', '/authentication/password_based:built_in_database/users', { user_id: 'mallory', password: 'pw' }), 201);
    await waitUntil(async () => (await connackCode(a, { username: 'mallory', password: 'pw' })) === 0, 'mallory on A', 10_000);
    const m = await connect(a.url, { protocolVersion: 5, clientId: 'mallory-1', username: 'mallory', password: 'pw' });
    const kicked = new Promise<number | undefined>((resolve) => m.once('disconnect', (p) => resolve(p.reasonCode)));
    assert.equal(await call(b, 'POST', '/banned', { as: 'username', who: 'mallory', reason: 'test' }), 200);
    assert.equal(await kicked, 0x98);
    assert.equal(await connackCode(a, { protocolVersion: 5, clientId: 'mallory-2', username: 'mallory', password: 'pw' }), 0x8a);
    m.end(true);
  });

  it("any gateway's /stats, /metrics and /nodes answer for the whole installation (the nodes table)", async () => {
    const get = async (on: BrokerProcess, path: string): Promise<{ status: number; json: unknown }> => {
      const res = await fetch(`http://127.0.0.1:${on.httpPort}/api/v5${path}`, { headers: { authorization: AUTH } });
      return { status: res.status, json: await res.json() };
    };
    await call(a, 'POST', '/authentication/password_based:built_in_database/users', { user_id: 'stat', password: 'pw' });
    await waitUntil(async () => (await connackCode(b, { username: 'stat', password: 'pw' })) === 0, 'stat on B', 10_000);
    const onA = await connect(a.url, { clientId: 'stat-a', username: 'stat', password: 'pw' });
    const onB = await connect(b.url, { clientId: 'stat-b', username: 'stat', password: 'pw' });
    // Snapshots are written every 5 s: within two periods A sees B's connection.
    const connections = async (): Promise<number> => ((await get(a, '/stats?aggregate=true')).json as Record<string, number>)['connections.count'] ?? 0;
    await waitUntil(async () => (await connections()) >= 2, 'two connections summed on A', 15_000);
    const nodes = (await get(a, '/nodes')).json as { node: string }[];
    assert.deepEqual(nodes.map((n) => n.node).sort(), ['gw-a', 'gw-b', 'router']);
    const one = (await get(a, '/stats?node=gw-b')).json as { node: string }[];
    assert.deepEqual(one.map((r) => r.node), ['gw-b']);
    assert.equal(((await get(b, '/metrics')).json as unknown[]).length, 3);
    assert.equal((await get(a, '/nodes/nope')).status, 404);
    await end(onA, onB);
  });
});
