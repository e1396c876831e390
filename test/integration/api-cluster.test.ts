// The HTTP API scaled out over a real Kafka: two gateways, the router and a `tributary api`
// process. Any of them lists every gateway's clients (in client-id order, paged, filtered, each
// with its gateway as `node`), shows, subscribes and kicks a client connected to another gateway,
// and knows an API key made through another process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { apiKeyFile, BrokerProcess, kafkaNodeEnv, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { waitUntil } from '../helpers/util';

const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `c${process.pid}x${Date.now()}.`;
const keys = apiKeyFile();
const OPS = keys.auth;
const env = (name: string): Record<string, string> => kafkaNodeEnv(name, prefix, { TRIBUTARY_API_KEY__BOOTSTRAP_FILE: keys.file, TRIBUTARY_DASHBOARD__DEFAULT_PASSWORD: 'pw' });

let router: BrokerProcess;
let a: BrokerProcess;
let b: BrokerProcess;
let api: BrokerProcess;
const clients: MqttClient[] = [];

before(async () => {
  assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
  router = await startBroker({ command: 'router', env: kafkaNodeEnv('router', prefix) });
  [a, b, api] = await Promise.all([startBroker({ command: 'gateway', env: env('gw-a') }), startBroker({ command: 'gateway', env: env('gw-b') }), startBroker({ command: 'api', env: env('api-1') })]);
  for (const [on, id, username] of [[a, 'c-a2', 'ua'], [b, 'c-b1', 'ub'], [a, 'c-a1', 'ua'], [b, 'c-b2', 'ub']] as const) {
    clients.push(await connect(on.url, { clientId: id, username, protocolVersion: 5 }));
  }
});
after(async () => {
  await end(...clients);
  await Promise.all([a?.stop(), b?.stop(), api?.stop()]);
  await router?.stop();
  keys.remove();
});

async function call(on: BrokerProcess, method: string, path: string, body?: unknown, auth = OPS): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${on.httpPort}/api/v5${path}`, { method, headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const ids = (page: { data: { clientid: string }[] }): string[] => page.data.map((c) => c.clientid);

describe('the HTTP API over Kafka answers for every gateway', () => {
  it('GET /clients on any process lists every gateway\'s clients in client-id order, paged and filtered', async () => {
    // Each process finds the others in the nodes table once their first snapshots arrived.
    for (const on of [a, b, api]) await waitUntil(async () => (await call(on, 'GET', '/clients')).json.meta?.count === 4, `4 clients listed by ${on.httpPort}`, 15_000);
    const all = (await call(api, 'GET', '/clients')).json;
    assert.deepEqual(ids(all), ['c-a1', 'c-a2', 'c-b1', 'c-b2']);
    assert.deepEqual(all.data.map((c: { node: string }) => c.node), ['gw-a', 'gw-a', 'gw-b', 'gw-b']);
    assert.equal(all.data[2].connected, true);
    assert.equal(typeof all.data[2].recv_pkt, 'number');
    const third = (await call(a, 'GET', '/clients?limit=1&page=3')).json;
    assert.deepEqual(ids(third), ['c-b1']);
    assert.deepEqual(third.meta, { page: 3, limit: 1, count: 4, hasnext: true });
    const second = (await call(b, 'GET', '/clients?limit=3&page=2')).json;
    assert.deepEqual([ids(second), second.meta.hasnext], [['c-b2'], false]);
    assert.deepEqual(ids((await call(a, 'GET', '/clients?username=ub')).json), ['c-b1', 'c-b2']);
    assert.deepEqual(ids((await call(api, 'GET', '/clients?clientid=c-a1&clientid=c-b2')).json), ['c-a1', 'c-b2']);
    assert.deepEqual(ids((await call(b, 'GET', '/clients?like_clientid=a&limit=1&page=2')).json), ['c-a2']);
    // EMQX's ?node=: one gateway's clients, asked on it, on the other gateway or on the api process.
    assert.deepEqual(ids((await call(a, 'GET', '/clients?node=gw-b')).json), ['c-b1', 'c-b2']);
    assert.deepEqual(ids((await call(a, 'GET', '/clients?node=gw-a')).json), ['c-a1', 'c-a2']);
    assert.deepEqual(ids((await call(api, 'GET', '/clients?node=gw-a&limit=1&page=2')).json), ['c-a2']);
    assert.deepEqual((await call(b, 'GET', '/clients?node=nowhere')).json.meta.count, 0);
  });

  it('a client on another gateway: shown, subscribed through the API (and routed to), its subscriptions listed', async () => {
    const one = await call(a, 'GET', '/clients/c-b1');
    assert.equal(one.status, 200);
    assert.equal(one.json.node, 'gw-b');
    assert.equal((await call(a, 'GET', '/clients/nobody')).json.code, 'CLIENTID_NOT_FOUND');
    const subscribed = await call(api, 'POST', '/clients/c-b1/subscribe', { topic: 'cmd/b1', qos: 1 });
    assert.equal(subscribed.status, 200, JSON.stringify(subscribed.json));
    assert.equal(subscribed.json.node, 'gw-b');
    assert.equal((await call(a, 'POST', '/clients/c-b1/subscribe', { topic: 'bad/#/x' })).status, 400, "the owner's 400 comes back");
    const inbox = new Inbox(clients[1]!);
    await clients[0]!.publishAsync('cmd/b1', 'hello', { qos: 1 });
    assert.equal((await inbox.waitFor(1, 15_000))[0]!.payload.toString(), 'hello');
    assert.deepEqual((await call(a, 'GET', '/clients/c-b1/subscriptions')).json.map((s: { topic: string; node: string }) => [s.topic, s.node]), [['cmd/b1', 'gw-b']]);
    await clients[2]!.subscribeAsync('cmd/a1', { qos: 0 });
    const subs = (await call(api, 'GET', '/subscriptions')).json;
    assert.deepEqual(subs.data.map((s: { clientid: string; topic: string }) => `${s.clientid} ${s.topic}`), ['c-a1 cmd/a1', 'c-b1 cmd/b1']);
    assert.equal(subs.meta.count, 2);
    assert.deepEqual((await call(b, 'GET', '/subscriptions?limit=1&page=1')).json.data.map((s: { clientid: string }) => s.clientid), ['c-a1']);
    assert.ok((await call(a, 'GET', '/subscriptions?node=gw-b')).json.data.every((s: { node: string }) => s.node === 'gw-b'));
    assert.deepEqual((await call(a, 'GET', '/subscriptions?node=gw-b')).json.data.map((s: { topic: string }) => s.topic), ['cmd/b1']);
    assert.equal((await call(api, 'GET', `/subscriptions?match_topic=${encodeURIComponent('$share/g/x')}`)).json.message, 'match_topic_invalid');
    assert.deepEqual((await call(api, 'GET', '/topics')).json.data, [{ topic: 'cmd/a1', node: 'gw-a' }, { topic: 'cmd/b1', node: 'gw-b' }]);
    assert.deepEqual((await call(a, 'GET', `/topics/${encodeURIComponent('cmd/b1')}`)).json, [{ topic: 'cmd/b1', node: 'gw-b' }]);
    assert.equal((await call(api, 'POST', '/clients/c-b1/unsubscribe', { topic: 'cmd/b1' })).status, 204);
    assert.deepEqual((await call(b, 'GET', '/clients/c-b1/subscriptions')).json, []);
  });

  it('kicking a client connected to another gateway disconnects it (0x98)', async () => {
    const kicked = new Promise<number | undefined>((resolve) => clients[3]!.once('disconnect', (p) => resolve(p.reasonCode)));
    assert.equal((await call(a, 'DELETE', '/clients/c-b2')).status, 204);
    assert.equal(await kicked, 0x98);
    assert.equal((await call(api, 'GET', '/clients/c-b2')).status, 404);
    assert.equal((await call(api, 'DELETE', '/clients/c-b2')).status, 404);
  });

  it("the api process: no listeners of its own, the gateways' routes and the installation's nodes", async () => {
    assert.equal(api.mqttPort, 0, 'no MQTT listener');
    const nodes = (await call(api, 'GET', '/nodes')).json.map((n: { node: string; role: string }) => `${n.node}:${n.role}`).sort();
    assert.deepEqual(nodes, ['api-1:core', 'gw-a:gateway', 'gw-b:gateway', 'router:router']);
    // Routes only a gateway has (publish, authentication) go to one.
    assert.equal((await call(api, 'POST', '/publish', { topic: 'cmd/a1', payload: 'via api' })).status, 200);
    assert.equal((await call(api, 'GET', '/authentication')).status, 200);
    assert.equal((await call(api, 'GET', '/authentication', undefined, 'Basic eDp5')).status, 401, 'its own authentication first');
  });

  it('an API key made through one process works on every other', async () => {
    const login = await call(a, 'POST', '/login', { username: 'admin', password: 'pw' }, '');
    const created = await call(a, 'POST', '/api_key', { name: 'shared', desc: 'made on gw-a' }, `Bearer ${login.json.token}`);
    assert.equal(created.status, 200);
    const key = `Basic ${Buffer.from(`${created.json.api_key}:${created.json.api_secret}`).toString('base64')}`;
    for (const on of [b, api]) await waitUntil(async () => (await call(on, 'GET', '/stats', undefined, key)).status === 200, `the key on ${on.httpPort}`, 10_000);
    const apiLogin = await call(api, 'POST', '/login', { username: 'admin', password: 'pw' }, '');
    assert.equal((await call(api, 'PUT', '/api_key/shared', { enable: false }, `Bearer ${apiLogin.json.token}`)).json.enable, false);
    await waitUntil(async () => (await call(a, 'GET', '/stats', undefined, key)).status === 401, 'disabled on gw-a', 10_000);
  });
});
