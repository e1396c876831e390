// The rule engine scaled out over a real Kafka: `tributary rules` runs the engine as its own
// process (consumer group `rules` over messages and events), with the rules API. Republish goes
// through the router to another gateway;
// a kill -9 of the rules process loses no matched message: after its restart the webhook has
// every message (at least once).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { FastifyInstance } from 'fastify';
import { BrokerProcess, kafkaNodeEnv, startBroker, tempDir } from '../helpers/broker';
import { clientTracker, sleep, waitForTopic, waitUntil } from '../helpers/util';

const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `r${process.pid}x${Date.now()}.`;

describe('rule engine over Kafka (tributary rules)', () => {
  let router: BrokerProcess;
  let gwA: BrokerProcess;
  let gwB: BrokerProcess;
  let rules: BrokerProcess;
  let rules2: BrokerProcess | undefined;
  let hook: FastifyInstance;
  let hookPort = 0;
  const seen: number[] = [];
  const rulesDir = tempDir();
  const { client } = clientTracker(() => gwA.url);
  let rulesEnv: Record<string, string>;
  const auth = { TRIBUTARY_DASHBOARD__DEFAULT_PASSWORD: 'test-pw' };

  const call = async (on: BrokerProcess, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const login = await fetch(`http://127.0.0.1:${on.httpPort}/api/v5/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'test-pw' }) });
    const { token } = (await login.json()) as { token: string };
    const res = await fetch(`http://127.0.0.1:${on.httpPort}/api/v5${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };

  before(async () => {
    assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
    hook = Fastify();
    hook.post('/in', async (req) => {
      seen.push((req.body as { n: number }).n);
      return {};
    });
    await hook.listen({ port: 0, host: '127.0.0.1' });
    hookPort = (hook.server.address() as { port: number }).port;
    rulesEnv = kafkaNodeEnv('rules-1', prefix, {
      ...auth,
      TRIBUTARY_CONNECTORS: JSON.stringify({ http: { sink: { url: `http://127.0.0.1:${hookPort}` } } }),
      TRIBUTARY_ACTIONS: JSON.stringify({ http: { sink: { connector: 'sink', parameters: { path: '/in' } } } }),
    });
    router = await startBroker({ command: 'router', env: kafkaNodeEnv('router', prefix) });
    [gwA, gwB] = await Promise.all([startBroker({ command: 'gateway', env: kafkaNodeEnv('gw-a', prefix, auth) }), startBroker({ command: 'gateway', env: kafkaNodeEnv('gw-b', prefix, auth) })]);
    rules = await startBroker({ command: 'rules', env: rulesEnv, dataDir: rulesDir, keepDataDir: true });
  });
  after(async () => {
    await Promise.all([gwA?.stop(), gwB?.stop(), rules?.stop(), rules2?.stop()]);
    await router?.stop();
    await hook?.close();
  });

  it('a rule made through the API runs in the rules process; its republish reaches a subscriber on gateway B', async () => {
    const made = await call(rules, 'POST', '/rules', { id: 'cross', sql: 'SELECT payload.v as v FROM "c/#"', actions: [{ function: 'republish', args: { topic: 'c-out/${v}', payload: 'got ${v}' } }] });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const onB = await clientTracker(() => gwB.url).client({ clientId: 'rc-sub' });
    await onB.client.subscribeAsync('c-out/#', { qos: 1 });
    const pub = await client({ clientId: 'rc-pub' });
    await waitUntil(async () => {
      await pub.client.publishAsync('c/1', JSON.stringify({ v: 9 }), { qos: 1 });
      return onB.inbox.messages.some((m) => m.topic === 'c-out/9');
    }, 'the republished message on gateway B', 20_000);
    assert.equal((await waitForTopic(onB.inbox, 'c-out/9')).payload.toString(), 'got 9');
    await onB.client.endAsync();
  });

  it("a delivery on gateway B carries the publisher's username from gateway A (from_username)", async () => {
    const made = await call(rules, 'POST', '/rules', { id: 'fromuser', sql: "SELECT clientid, from_username FROM \"$events/message_delivered\" WHERE topic = 'fu/1'", actions: [{ function: 'republish', args: { topic: 'fu-out/${clientid}', payload: '${from_username}' } }] });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const onB = await clientTracker(() => gwB.url).client({ clientId: 'fu-sub' });
    await onB.client.subscribeAsync(['fu/1', 'fu-out/#'], { qos: 1 });
    const pub = await client({ clientId: 'fu-pub', username: 'alice' });
    // Until the gateways follow the new rule (they write the events and the publisher headers it needs).
    await waitUntil(async () => {
      await pub.client.publishAsync('fu/1', 'x', { qos: 1 });
      return onB.inbox.messages.some((m) => m.topic === 'fu-out/fu-sub' && m.payload.toString() === 'alice');
    }, 'the delivery event with from_username alice', 20_000).catch(async (err: Error) => {
      const m = (await call(rules, 'GET', '/rules/fromuser/metrics')).json;
      throw new Error(`${err.message}; got ${JSON.stringify(onB.inbox.messages.filter((x) => x.topic.startsWith('fu')).map((x) => [x.topic, x.payload.toString()]).slice(0, 5))}; ${JSON.stringify(m)}`);
    });
    await onB.client.endAsync();
  });

  it("a message nobody subscribes to is message_dropped by the router, naming the publisher on gateway A", async () => {
    const made = await call(rules, 'POST', '/rules', { id: 'mdrop', sql: "SELECT clientid, username, reason FROM \"$events/message_dropped\" WHERE topic = 'nobody/1'", actions: [{ function: 'republish', args: { topic: 'md-out/${clientid}', payload: '${reason}|${username}' } }] });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const onB = await clientTracker(() => gwB.url).client({ clientId: 'md-watch' });
    await onB.client.subscribeAsync('md-out/#', { qos: 1 });
    const pub = await client({ clientId: 'md-pub', username: 'erin' });
    await waitUntil(async () => {
      await pub.client.publishAsync('nobody/1', 'x', { qos: 1 });
      return onB.inbox.messages.some((m) => m.topic === 'md-out/md-pub' && m.payload.toString() === 'no_subscribers|erin');
    }, 'the router reported the drop with the publisher', 20_000);
    await onB.client.endAsync();
  });

  it('kill -9 of the rules process loses no matched message', async () => {
    const made = await call(rules, 'POST', '/rules', { id: 'tohook', sql: 'SELECT payload.n as n FROM "k/#"', actions: ['http:sink'] });
    assert.equal(made.status, 201);
    const pub = await client({ clientId: 'rk-pub' });
    // Wait until the rules process runs the new rule.
    let probe = -1;
    await waitUntil(async () => {
      await pub.client.publishAsync('k/probe', JSON.stringify({ n: probe }), { qos: 1 });
      probe--;
      return seen.some((n) => n < 0);
    }, 'the rule runs', 20_000);
    const total = 400;
    const sending = (async () => {
      for (let n = 0; n < total; n++) {
        await pub.client.publishAsync('k/1', JSON.stringify({ n }), { qos: 1 });
        if (n % 20 === 0) await sleep(10);
      }
    })();
    await waitUntil(() => seen.some((n) => n >= 50), 'some messages went through', 20_000);
    await rules.kill9();
    await sending;
    rules = await startBroker({ command: 'rules', env: rulesEnv, dataDir: rulesDir, keepDataDir: true });
    await waitUntil(() => new Set(seen.filter((n) => n >= 0)).size === total, `every message reaches the webhook (got ${new Set(seen.filter((n) => n >= 0)).size})`, 60_000);
  });

  it("a gateway answers the rule engine's routes through a rules process, and a rule's metrics sum every rules process", async () => {
    rules2 = await startBroker({ command: 'rules', env: { ...rulesEnv, TRIBUTARY_NODE__NAME: 'rules-2' } });
    const made = await call(gwA, 'POST', '/rules', { id: 'viagw', sql: 'SELECT * FROM "via/#"', actions: [{ function: 'console' }] });
    assert.equal(made.status, 201, `created through gateway A: ${JSON.stringify(made.json)}`);
    const list = await call(gwB, 'GET', '/rules');
    assert.equal(list.status, 200);
    assert.ok(list.json.data.some((r: { id: string }) => r.id === 'viagw'), 'listed by gateway B');
    assert.equal((await call(gwA, 'GET', '/rules/nope')).json.code, 'RULE_NOT_FOUND', "the rules process's errors come through");
    assert.equal((await call(gwA, 'GET', '/actions')).json[0].id, 'http:sink');
    // Both rules processes answer for the rule once rules-2's snapshot is in the nodes table.
    let metrics: any;
    await waitUntil(async () => {
      metrics = (await call(gwA, 'GET', '/rules/tohook/metrics')).json;
      return metrics.node_metrics?.length === 2;
    }, 'node_metrics of both rules processes', 20_000);
    assert.deepEqual(metrics.node_metrics.map((n: { node: string }) => n.node).sort(), ['rules-1', 'rules-2']);
    const sum = metrics.node_metrics.reduce((a: number, n: { metrics: { matched: number } }) => a + n.metrics.matched, 0);
    assert.equal(metrics.metrics.matched, sum, 'metrics are the sum of node_metrics');
    assert.ok(sum > 0, 'the rule matched after the kill -9 test');
  });
});
