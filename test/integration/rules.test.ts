// The rule engine in a real single node: rules from the configuration and from the HTTP API,
// republish reached by mqtt.js clients (and its loop guard), $events sources, the rule-test API,
// metrics, and a webhook sink written here with fastify that goes down for 30 s under load and
// comes back (every request arrives, in order, none dropped), also across a kill -9 of the node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { FastifyInstance } from 'fastify';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { clientTracker, sleep, waitForTopic, waitUntil } from '../helpers/util';

/** A webhook receiver on a fixed port (so it can stop and start again at the same URL). */
class Hook {
  readonly bodies: Record<string, unknown>[] = [];
  private app: FastifyInstance | undefined;
  constructor(readonly port: number) {}
  async start(): Promise<void> {
    const app = Fastify();
    app.post('/hook/:topic', async (req) => {
      this.bodies.push({ ...(req.body as Record<string, unknown>), path_topic: (req.params as { topic: string }).topic, header: req.headers['x-rule'] });
      return { ok: true };
    });
    await app.listen({ port: this.port, host: '127.0.0.1' });
    this.app = app;
  }
  async stop(): Promise<void> {
    await this.app?.close();
    this.app = undefined;
  }
}

async function freePort(): Promise<number> {
  const app = Fastify();
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  await app.close();
  return port;
}

function rulesEnv(hookPort: number): Record<string, string> {
  return {
    TRIBUTARY_DASHBOARD__DEFAULT_PASSWORD: 'test-pw',
    TRIBUTARY_RULE_ENGINE__RULES: JSON.stringify({
      double: {
        sql: 'SELECT payload.x * 2 as x, topic FROM "in/#" WHERE payload.x > 0',
        actions: [{ function: 'republish', args: { topic: 'out/${topic}', payload: '{"x2": ${x}}', qos: 1 } }],
      },
      loop: { sql: 'SELECT * FROM "loop/#"', actions: [{ function: 'republish', args: { topic: 'loop/again' } }] },
      hook: { sql: "SELECT payload.n as n, clientid FROM \"hook/#\"", actions: ['http:recv'] },
      connected: { sql: 'SELECT clientid, proto_ver FROM "$events/client_connected" WHERE proto_ver = 5', actions: [{ function: 'republish', args: { topic: 'events/connected/${clientid}', payload: '${proto_ver}' } }] },
    }),
    TRIBUTARY_CONNECTORS: JSON.stringify({ http: { recv: { url: `http://127.0.0.1:${hookPort}/hook`, headers: { 'x-rule': 'yes' }, resource_opts: { health_check_interval: '300ms' } } } }),
    // inflight_window 1: the outage test below checks the order of delivery.
    TRIBUTARY_ACTIONS: JSON.stringify({ http: { recv: { connector: 'recv', parameters: { method: 'post', path: '/${clientid}', body: '' }, resource_opts: { inflight_window: 1 } } } }),
  };
}

describe('rule engine on a single node', () => {
  let b: BrokerProcess;
  let hook: Hook;
  let bearer: string;
  const { client } = clientTracker(() => b.url);
  const dataDir = tempDir();

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5${path}`, { method, headers: { authorization: bearer, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const login = async (): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${b.httpPort}/api/v5/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'test-pw' }) });
    bearer = `Bearer ${((await res.json()) as { token: string }).token}`;
  };

  before(async () => {
    hook = new Hook(await freePort());
    await hook.start();
    b = await startBroker({ env: rulesEnv(hook.port), dataDir, keepDataDir: true });
    await login();
  });
  after(async () => {
    await b?.stop();
    await hook?.stop();
  });

  it('a configured rule republishes what it selects, and its WHERE filters', async () => {
    const sub = await client({ clientId: 'rules-sub', protocolVersion: 5 });
    await sub.client.subscribeAsync('out/#', { qos: 1 });
    const pub = await client({ clientId: 'rules-pub' });
    await pub.client.publishAsync('in/a', JSON.stringify({ x: -1 }), { qos: 1 });
    await pub.client.publishAsync('in/a', JSON.stringify({ x: 21 }), { qos: 1 });
    const got = await waitForTopic(sub.inbox, 'out/in/a');
    assert.deepEqual(JSON.parse(got.payload.toString()), { x2: 42 });
    assert.equal(got.packet.qos, 1);
    // Delivery can precede the durable append the action's success waits for.
    await waitUntil(async () => (await call('GET', '/rules/double/metrics')).json.metrics['actions.success'] === 1, 'the republish counted');
    const m = await call('GET', '/rules/double/metrics');
    assert.equal(m.status, 200);
    assert.equal(m.json.metrics.matched, 2);
    assert.equal(m.json.metrics.passed, 1);
    assert.equal(m.json.metrics['failed.no_result'], 1);
    assert.equal(m.json.metrics['actions.success'], 1);
    assert.equal(sub.inbox.messages.filter((x) => x.topic === 'out/in/a').length, 1, 'x = -1 was filtered');
  });

  it('republish does not trigger its own rule again (loop guard)', async () => {
    const sub = await client({ clientId: 'loop-sub' });
    await sub.client.subscribeAsync('loop/#', { qos: 1 });
    const pub = await client({ clientId: 'loop-pub' });
    await pub.client.publishAsync('loop/start', 'go', { qos: 1 });
    await waitForTopic(sub.inbox, 'loop/again');
    await waitUntil(async () => (await call('GET', '/rules/loop/metrics')).json.metrics['actions.success'] === 1, 'the loop rule acted once');
    await sleep(300);
    assert.deepEqual(sub.inbox.messages.map((x) => x.topic), ['loop/start', 'loop/again']);
    assert.equal((await call('GET', '/rules/loop/metrics')).json.metrics.matched, 1);
  });

  it('$events/client_connected runs a rule with EMQX field names', async () => {
    const sub = await client({ clientId: 'ev-watch' });
    await sub.client.subscribeAsync('events/connected/#', { qos: 1 });
    await client({ clientId: 'ev-dev1', protocolVersion: 5 });
    const got = await waitForTopic(sub.inbox, 'events/connected/ev-dev1');
    assert.equal(got.payload.toString(), '5');
  });

  it('rules are created, listed, changed, tested and deleted through the API', async () => {
    const bad = await call('POST', '/rules', { id: 'bad', sql: 'SELEC * FROM "t"', actions: [] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 'BAD_REQUEST');
    const noSink = await call('POST', '/rules', { id: 'nosink', sql: 'SELECT * FROM "t"', actions: ['http:missing'] });
    assert.equal(noSink.status, 400);
    assert.match(noSink.json.message, /http:missing/);
    const created = await call('POST', '/rules', { id: 'api1', sql: 'SELECT upper(payload) as up FROM "api/#"', actions: [{ function: 'republish', args: { topic: 'api-out', payload: '${up}' } }] });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(created.json.from, ['api/#']);
    assert.equal((await call('POST', '/rules', { id: 'api1', sql: 'SELECT * FROM "x"' })).status, 409);
    const list = await call('GET', '/rules');
    assert.ok(list.json.data.some((r: { id: string }) => r.id === 'api1'));
    assert.ok(list.json.data.some((r: { id: string }) => r.id === 'double'), 'configured rules are listed too');
    assert.equal(list.json.meta.count, list.json.data.length);

    const sub = await client({ clientId: 'api-sub' });
    await sub.client.subscribeAsync('api-out', { qos: 1 });
    const pub = await client({ clientId: 'api-pub' });
    await pub.client.publishAsync('api/1', 'hello', { qos: 1 });
    assert.equal((await waitForTopic(sub.inbox, 'api-out')).payload.toString(), 'HELLO');

    const put = await call('PUT', '/rules/api1', { enable: false });
    assert.equal(put.status, 200);
    assert.equal(put.json.enable, false);
    await pub.client.publishAsync('api/1', 'again', { qos: 1 });
    await sleep(300);
    assert.equal(sub.inbox.messages.length, 1, 'a disabled rule does not run');

    const test = await call('POST', '/rules/api1/test', { context: { event_type: 'message_publish', topic: 'api/2', payload: 'abc' } });
    assert.equal(test.status, 200, JSON.stringify(test.json));
    assert.deepEqual(test.json.result, { up: 'ABC' });
    assert.equal(test.json.actions[0].rendered.payload, 'ABC');

    assert.equal((await call('DELETE', '/rules/api1')).status, 204);
    assert.equal((await call('GET', '/rules/api1')).status, 404);
    assert.equal((await call('GET', '/rules/api1')).json.code, 'RULE_NOT_FOUND');
  });

  it('POST /rule_test answers 200 with the selection, 412 NOT_MATCH and 400 BAD_REQUEST', async () => {
    const ok = await call('POST', '/rule_test', { sql: 'SELECT payload.a as a, clientid FROM "t/#"', context: { topic: 't/1', payload: '{"a": 7}' } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { a: 7, clientid: 'c_emqx' });
    const each = await call('POST', '/rule_test', { sql: 'FOREACH payload.s as s FROM "t/#"', context: { topic: 't/1', payload: '{"s": [1, 2]}' } });
    assert.equal(each.status, 200);
    assert.equal(each.json.length, 2);
    // client_attrs: {} unless the context gives them, as every real event has the column.
    assert.deepEqual((await call('POST', '/rule_test', { sql: 'SELECT client_attrs FROM "t/#"', context: { topic: 't/1' } })).json, { client_attrs: {} });
    assert.deepEqual((await call('POST', '/rule_test', { sql: 'SELECT client_attrs.group as g FROM "t/#"', context: { topic: 't/1', client_attrs: { group: 'a' } } })).json, { g: 'a' });
    const miss = await call('POST', '/rule_test', { sql: 'SELECT * FROM "t/#"', context: { topic: 'other' } });
    assert.equal(miss.status, 412);
    assert.deepEqual(miss.json, { code: 'NOT_MATCH', message: 'SQL Not Match' });
    const where = await call('POST', '/rule_test', { sql: 'SELECT * FROM "t/#" WHERE payload.a > 10', context: { topic: 't/1', payload: '{"a": 7}' } });
    assert.equal(where.status, 412);
    const parse = await call('POST', '/rule_test', { sql: 'SELECT FROM', context: {} });
    assert.equal(parse.status, 400);
    assert.equal(parse.json.code, 'BAD_REQUEST');
    const ev = await call('POST', '/rule_test', { sql: 'SELECT clientid, reason FROM "$events/client_disconnected"', context: { event_type: 'client_disconnected', clientid: 'x1' } });
    assert.deepEqual(ev.json, { clientid: 'x1', reason: 'normal' });
  });

  it('a webhook down for 30 s under load loses nothing: its requests wait in the log and arrive in order, also across a kill -9', async () => {
    const pub = await client({ clientId: 'hook-pub' });
    await pub.client.publishAsync('hook/1', JSON.stringify({ n: 0 }), { qos: 1 });
    await waitUntil(() => hook.bodies.length === 1, 'the webhook got the first request');
    assert.equal(hook.bodies[0]!.n, 0);
    assert.equal(hook.bodies[0]!.clientid, 'hook-pub');
    assert.equal(hook.bodies[0]!.path_topic, 'hook-pub', 'path template');
    assert.equal(hook.bodies[0]!.header, 'yes', 'connector headers');

    const status = async (): Promise<string> => (await call('GET', '/connectors')).json.find((c: { id: string }) => c.id === 'http:recv').status;
    assert.equal(await status(), 'connected');
    await hook.stop();
    // No request goes out now: only the connector's health check can see the webhook down.
    await waitUntil(async () => (await status()) === 'disconnected', 'the health check sees the webhook down', 10_000);
    const total = 600;
    const started = Date.now();
    // 30 s of load while the webhook is down: 20 messages/s.
    for (let n = 1; n < total; n++) {
      await pub.client.publishAsync('hook/1', JSON.stringify({ n }), { qos: 1 });
      const due = started + (n * 30_000) / total;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    const metrics = (await call('GET', '/actions/http:recv/metrics')).json.metrics;
    assert.ok(metrics.queuing > 0, `requests are queued: ${JSON.stringify(metrics)}`);
    assert.ok(metrics.retried > 0, 'the sink was retried');
    // The node dies with the requests still buffered; after its restart they go out.
    await b.kill9();
    b = await startBroker({ env: rulesEnv(hook.port), dataDir, keepDataDir: true });
    await login();
    await hook.start();
    await waitUntil(() => hook.bodies.length >= total, `every request arrives (got ${hook.bodies.length})`, 30_000);
    const ns = hook.bodies.map((x) => x.n as number);
    assert.deepEqual([...new Set(ns)].sort((a, c) => a - c), Array.from({ length: total }, (_, i) => i), 'none missing');
    const firstSeen = ns.map((n, i) => [n, i] as const).filter(([n], i) => ns.indexOf(n) === i).map(([n]) => n);
    assert.deepEqual(firstSeen, [...firstSeen].sort((a, c) => a - c), 'in order (first deliveries)');
    const after = (await call('GET', '/actions/http:recv/metrics')).json.metrics;
    assert.equal(after['dropped.queue_full'], 0);
    assert.equal(after.dropped, 0);
  });
});
