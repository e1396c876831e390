// The HTTP API v5 against a real node: login and bearer tokens, a connected mqtt.js client in
// /clients, kick (DISCONNECT 0x98), publish to a mosquitto_sub, subscribe through the API,
// retained messages listed and deleted, unknown paths.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { MqttClient } from 'mqtt';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';

let b: BrokerProcess;
let api: string;
let bearer: string;

before(async () => {
  b = await startBroker({ env: { TRIBUTARY_DASHBOARD__DEFAULT_PASSWORD: 'test-pw' } });
  api = `http://127.0.0.1:${b.httpPort}/api/v5`;
});
after(async () => {
  await b?.stop();
});

async function call(method: string, path: string, body?: unknown, auth = bearer): Promise<{ status: number; json: any }> {
  const res = await fetch(`${api}${path}`, { method, headers: { ...(auth ? { authorization: auth } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('HTTP API v5', () => {
  it('login gives a bearer token; a wrong password, a garbage token and no header are 401', async () => {
    const bad = await call('POST', '/login', { username: 'admin', password: 'public' }, '');
    assert.equal(bad.status, 401);
    assert.equal(bad.json.code, 'BAD_USERNAME_OR_PWD');
    const ok = await call('POST', '/login', { username: 'admin', password: 'test-pw' }, '');
    assert.equal(ok.status, 200);
    assert.equal(ok.json.role, 'administrator');
    bearer = `Bearer ${ok.json.token}`;
    assert.equal((await call('GET', '/clients')).status, 200);
    assert.equal((await call('GET', '/clients', undefined, 'Bearer x.y')).json.code, 'BAD_TOKEN');
    assert.equal((await call('GET', '/clients', undefined, '')).json.code, 'AUTHORIZATION_HEADER_ERROR');
    assert.ok(!b.logs.some((l) => String(l.msg).includes('default password')), 'no warning with a password set');
  });

  it('a connected client is in /clients with its fields; kick sends DISCONNECT 0x98', async () => {
    const c = await connect(b.url, { clientId: 'api-c1', username: 'u1', protocolVersion: 5, keepalive: 30, clean: true });
    try {
      const list = await call('GET', '/clients?like_clientid=api-c');
      assert.equal((await call('GET', '/clients?like_clientid=api-c&node=elsewhere')).json.meta.count, 0, '?node= of another node');
      assert.equal((await call('GET', `/clients?like_clientid=api-c&node=${encodeURIComponent(list.json.data[0].node)}`)).json.meta.count, list.json.meta.count, '?node= of this node');
      assert.equal(list.status, 200);
      const item = list.json.data.find((x: { clientid: string }) => x.clientid === 'api-c1');
      assert.ok(item, JSON.stringify(list.json));
      assert.equal(item.username, 'u1');
      assert.equal(item.ip_address, '127.0.0.1');
      assert.equal(typeof item.port, 'number');
      assert.equal(item.proto_name, 'MQTT');
      assert.equal(item.proto_ver, 5);
      assert.equal(item.connected, true);
      assert.equal(item.keepalive, 30);
      assert.equal(item.clean_start, true);
      assert.equal(item.listener, 'tcp:default');
      assert.match(item.connected_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(item.node, b.logs.find((l) => l.node)?.node ?? item.node);
      assert.equal((await call('GET', '/clients/nobody')).json.code, 'CLIENTID_NOT_FOUND');
      const disconnected = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
      assert.equal((await call('DELETE', '/clients/api-c1')).status, 204);
      assert.equal(await disconnected, 0x98);
      assert.equal((await call('GET', '/clients/api-c1')).status, 404);
    } finally {
      await end(c);
    }
  });

  it('/publish reaches a mosquitto_sub', async () => {
    const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(b.mqttPort), '-t', 'api/mosq', '-C', '1', '-d', '-F', 'MSG|%t|%p'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const subacked = new Promise<void>((resolve) => createInterface({ input: sub.stdout! }).on('line', (l) => (lines.push(l), l.includes('SUBACK') && resolve())));
    const exited = new Promise((resolve) => sub.once('close', resolve));
    await subacked;
    const res = await call('POST', '/publish', { topic: 'api/mosq', payload: Buffer.from('hi there').toString('base64'), payload_encoding: 'base64', qos: 1 });
    assert.equal(res.status, 200);
    assert.match(res.json.id, /^[0-9a-f]{32}$/);
    await exited;
    assert.ok(lines.includes('MSG|api/mosq|hi there'), lines.join('\n'));
    const none = await call('POST', '/publish', { topic: 'api/nobody', payload: 'x' });
    assert.deepEqual([none.status, none.json.message], [202, 'no_matching_subscribers']);
    const invalid = await call('POST', '/publish', { topic: 'a/+', payload: 'x' });
    assert.deepEqual([invalid.status, invalid.json.reason_code], [400, 144]);
    const missing = await call('POST', '/publish', { payload: 'x' });
    assert.deepEqual([missing.status, missing.json.code], [400, 'BAD_REQUEST']);
    assert.match(missing.json.message, /topic/);
  });

  it('a subscription made through the API delivers to the client and is listed', async () => {
    let c: MqttClient | undefined;
    try {
      c = await connect(b.url, { clientId: 'api-c2', protocolVersion: 5 });
      const inbox = new Inbox(c);
      const s = await call('POST', '/clients/api-c2/subscribe', { topic: 'api/sub/#', qos: 1 });
      assert.equal(s.status, 200);
      assert.equal(s.json.topic, 'api/sub/#');
      assert.deepEqual((await call('GET', '/clients/api-c2/subscriptions')).json.map((x: { topic: string; qos: number }) => [x.topic, x.qos]), [['api/sub/#', 1]]);
      assert.ok((await call('GET', '/subscriptions?clientid=api-c2')).json.data.length === 1);
      assert.ok((await call('GET', '/topics')).json.data.some((t: { topic: string }) => t.topic === 'api/sub/#'));
      assert.equal((await call('POST', '/publish', { topic: 'api/sub/x', payload: 'p1', qos: 1 })).status, 200);
      const [m] = await inbox.waitFor(1);
      assert.equal(m!.topic, 'api/sub/x');
      assert.equal(m!.payload.toString(), 'p1');
      assert.equal((await call('POST', '/clients/api-c2/unsubscribe', { topic: 'api/sub/#' })).status, 204);
      assert.equal((await call('GET', '/clients/api-c2/subscriptions')).json.length, 0);
    } finally {
      await end(c);
    }
  });

  it('retained messages are listed, read and deleted', async () => {
    assert.equal((await call('POST', '/publish', { topic: 'api/ret', payload: 'kept', retain: true })).status, 202);
    const list = await call('GET', '/retainer/messages');
    assert.ok(list.json.data.some((m: { topic: string }) => m.topic === 'api/ret'), JSON.stringify(list.json));
    const one = await call('GET', '/retainer/message/api%2Fret');
    assert.equal(Buffer.from(one.json.payload, 'base64').toString(), 'kept');
    assert.equal((await call('DELETE', '/retainer/message/api%2Fret')).status, 204);
    assert.equal((await call('GET', '/retainer/message/api%2Fret')).status, 404);
  });

  it('listeners, stats and unknown paths', async () => {
    const ls = (await call('GET', '/listeners')).json;
    const tcp = ls.find((l: { id: string }) => l.id === 'tcp:default');
    assert.equal(tcp.status.running, true);
    assert.equal(tcp.bind, `127.0.0.1:${b.mqttPort}`);
    assert.ok(Array.isArray((await call('GET', '/stats')).json));
    const nf = await call('GET', '/no/such/path');
    assert.deepEqual([nf.status, nf.json.code], [404, 'NOT_FOUND']);
  });
});
