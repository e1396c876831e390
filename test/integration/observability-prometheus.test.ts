// Prometheus scraping and the monitor against a real broker after MQTT traffic: the exposition
// parses, counters moved, `prometheus.prefix = emqx_` gives EMQX's names; the API key is only
// needed with prometheus.enable_basic_auth. /prometheus/data_integration on a node with rules, a
// webhook sink (a node:http server here) and a disabled connector and action, default prefix.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '@tributary/api';
import { silentLogger } from '@tributary/common';
import { PrometheusCollector, prometheusRoutes } from '@tributary/observability';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';

interface Parsed {
  types: Map<string, string>;
  values: Map<string, number>;
}

/** Parses text exposition 0.0.4 strictly enough to catch a malformed line. */
function parse(text: string): Parsed {
  const types = new Map<string, string>();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(m, `malformed exposition line: ${line}`);
    values.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return { types, values };
}

let b: BrokerProcess;
let api: string;
const dir = mkdtempSync(join(tmpdir(), 'tributary-prom-'));
writeFileSync(join(dir, 'keys'), 'ops:s3cret\n');
const AUTH = { authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` };

/** Polls `get` until `ok` holds (the monitor samples on its own timer). */
async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  b = await startBroker({ env: { TRIBUTARY_PROMETHEUS__PREFIX: 'emqx_', TRIBUTARY_MONITOR__SAMPLE_INTERVAL: '200ms', TRIBUTARY_API_KEY__BOOTSTRAP_FILE: join(dir, 'keys') } });
  api = `http://127.0.0.1:${b.httpPort}/api/v5`;
});
after(async () => {
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('prometheus and monitor on a real broker', () => {
  it('counts connections and messages under EMQX names, without an API key', async () => {
    const sub = await connect(b.url, { clientId: 'prom-sub' });
    const pub = await connect(b.url, { clientId: 'prom-pub' });
    try {
      await sub.subscribeAsync('prom/t', { qos: 1 });
      const inbox = new Inbox(sub);
      for (let i = 0; i < 5; i++) await pub.publishAsync('prom/t', `m${i}`, { qos: 1 });
      await inbox.waitFor(5);
      const res = await fetch(`${api}/prometheus/stats`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const p = parse(await res.text());
      assert.equal(p.types.get('emqx_connections_count'), 'gauge');
      assert.equal(p.values.get('emqx_connections_count'), 2);
      assert.equal(p.values.get('emqx_live_connections_count'), 2);
      assert.equal(p.values.get('emqx_subscriptions_count'), 1);
      assert.equal(p.types.get('emqx_messages_received'), 'counter');
      assert.ok(p.values.get('emqx_messages_received')! >= 5);
      assert.ok(p.values.get('emqx_messages_sent')! >= 5);
      assert.ok(p.values.get('emqx_messages_qos1_received')! >= 5);
      assert.ok(p.values.get('emqx_bytes_received')! > 0);
      assert.equal(p.types.get('emqx_messages_dropped_no_subscribers'), 'counter');
      assert.equal(p.types.get('emqx_delivery_dropped_queue_full'), 'counter');
      assert.ok(p.values.get('emqx_process_resident_memory_bytes')! > 1e6);
      assert.ok(p.values.has('emqx_eventloop_lag_seconds{quantile="0.99"}'));
      assert.ok(p.values.get('emqx_vm_total_memory')! > 0);
      // Counters move between scrapes.
      await pub.publishAsync('prom/none', 'x', { qos: 1 });
      const again = parse(await (await fetch(`${api}/prometheus/stats`)).text());
      assert.equal(again.values.get('emqx_messages_received'), p.values.get('emqx_messages_received')! + 1);
      assert.ok(again.values.get('emqx_messages_dropped_no_subscribers')! >= 1);
      const auth = parse(await (await fetch(`${api}/prometheus/auth`)).text());
      assert.equal(auth.types.get('emqx_authn_success'), 'counter');
      assert.ok(auth.values.has('emqx_banned_count'));
    } finally {
      await end(pub);
      await end(sub);
    }
  });

  it('/monitor samples counts and message increments; /monitor_current gives rates', async () => {
    const pub = await connect(b.url, { clientId: 'mon-pub' });
    try {
      assert.equal((await fetch(`${api}/monitor`)).status, 401, '/monitor needs an API key like other routes');
      for (let i = 0; i < 3; i++) await pub.publishAsync('mon/t', 'x', { qos: 1 });
      type Sample = { time_stamp: number; connections: number; received: number; sent: number; dropped: number; subscriptions: number; topics: number };
      const samples = await until(
        async () => (await (await fetch(`${api}/monitor?latest=3600`, { headers: AUTH })).json()) as Sample[],
        (s) => s.reduce((n, x) => n + x.received, 0) >= 3,
      );
      const last = samples.at(-1)!;
      assert.ok(Math.abs(last.time_stamp - Date.now()) < 60_000, 'time_stamp is in milliseconds');
      assert.ok(samples.some((x) => x.connections >= 1));
      assert.ok(samples.reduce((n, x) => n + x.dropped, 0) >= 3, 'nobody subscribes to mon/t: dropped');
      for (let i = 1; i < samples.length; i++) assert.ok(samples[i]!.time_stamp > samples[i - 1]!.time_stamp);
      const current = (await (await fetch(`${api}/monitor_current`, { headers: AUTH })).json()) as Record<string, number>;
      for (const k of ['connections', 'live_connections', 'subscriptions', 'topics', 'retained_msg_count', 'node_uptime', 'received_msg_rate', 'sent_msg_rate', 'dropped_msg_rate']) assert.equal(typeof current[k], 'number', k);
      assert.equal((await fetch(`${api}/monitor/nodes/nobody@nowhere`, { headers: AUTH })).status, 404);
    } finally {
      await end(pub);
    }
  });
});

describe('/prometheus/data_integration on a node with rules and a webhook sink', () => {
  let node: BrokerProcess;
  let hook: Server;
  const hits: string[] = [];
  const scrape = async (): Promise<Parsed> => {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/api/v5/prometheus/data_integration`);
    assert.equal(res.status, 200, 'no API key needed (enable_basic_auth is false)');
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };

  before(async () => {
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hits.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
    node = await startBroker({
      env: {
        TRIBUTARY_RULE_ENGINE__RULES: JSON.stringify({
          hot: { sql: 'SELECT payload.n as n FROM "di/#" WHERE payload.n > 0', actions: ['http:hook'] },
          off: { sql: 'SELECT * FROM "x/#"', enable: false, actions: [{ function: 'console' }, { function: 'republish', args: { topic: 'y' } }] },
        }),
        // The disabled connector points where nothing listens: it is never started.
        TRIBUTARY_CONNECTORS: JSON.stringify({ http: { hook: { url }, off: { url: 'http://127.0.0.1:9', enable: false } } }),
        TRIBUTARY_ACTIONS: JSON.stringify({ http: { hook: { connector: 'hook', parameters: { path: '/in' } }, off: { connector: 'off', enable: false } } }),
      },
    });
  });
  after(async () => {
    await node?.stop();
    await new Promise((r) => hook?.close(r));
  });

  it("exports EMQX's counts and per rule, action and connector families, labelled {id}", async () => {
    const pub = await connect(node.url, { clientId: 'di-pub' });
    try {
      for (const n of [1, 0, 2]) await pub.publishAsync('di/1', JSON.stringify({ n }), { qos: 1 });
    } finally {
      await end(pub);
    }
    // The webhook answered both; the sink counts a success once its reply is in.
    const p = await until(scrape, (x) => x.values.get('tributary_action_success{id="http:hook"}') === 2);
    assert.equal(hits.length, 2);
    assert.equal(p.values.get('tributary_rules_count'), 2);
    assert.equal(p.values.get('tributary_actions_count'), 3, 'the actions the rules list (1 + 2), as EMQX counts them');
    assert.equal(p.values.get('tributary_connectors_count'), 2);
    assert.equal(p.values.get('tributary_rule_enable{id="hot"}'), 1);
    assert.equal(p.values.get('tributary_rule_enable{id="off"}'), 0);
    assert.equal(p.types.get('tributary_rule_enable'), 'gauge');
    assert.equal(p.types.get('tributary_rule_matched'), 'counter');
    const rule = (k: string): number | undefined => p.values.get(`tributary_rule_${k}{id="hot"}`);
    assert.equal(rule('matched'), 3);
    assert.equal(rule('passed'), 2);
    assert.equal(rule('failed'), 1);
    assert.equal(rule('failed_no_result'), 1, 'n = 0 fails the WHERE');
    assert.equal(rule('failed_exception'), 0);
    assert.equal(rule('actions_total'), 2);
    assert.equal(rule('actions_success'), 2);
    assert.equal(rule('actions_failed'), 0);
    assert.equal(rule('actions_failed_out_of_service'), 0);
    assert.equal(rule('actions_failed_unknown'), 0);
    assert.equal(p.values.get('tributary_rule_matched{id="off"}'), 0);
    const action = (k: string, id = 'http:hook'): number | undefined => p.values.get(`tributary_action_${k}{id="${id}"}`);
    assert.equal(action('enable'), 1);
    assert.equal(action('status'), 1, 'connected');
    assert.equal(action('matched'), 2);
    assert.equal(action('received'), 2);
    assert.equal(action('failed'), 0);
    assert.equal(action('dropped'), 0);
    assert.equal(action('dropped_queue_full'), 0);
    assert.equal(action('dropped_expired'), 0);
    assert.equal(action('retried'), 0);
    assert.equal(action('queuing'), 0);
    assert.equal(action('inflight'), 0);
    assert.equal(p.types.get('tributary_action_queuing'), 'gauge');
    assert.equal(p.types.get('tributary_action_inflight'), 'gauge');
    assert.equal(p.types.get('tributary_action_success'), 'counter');
    assert.equal(p.types.get('tributary_action_dropped_resource_stopped'), 'counter');
    assert.equal(action('enable', 'http:off'), 0);
    assert.equal(action('status', 'http:off'), 0);
    assert.equal(action('success', 'http:off'), 0);
    assert.equal(p.values.get('tributary_connector_enable{id="http:hook"}'), 1);
    assert.equal(p.values.get('tributary_connector_status{id="http:hook"}'), 1);
    assert.equal(p.values.get('tributary_connector_enable{id="http:off"}'), 0);
    assert.equal(p.values.get('tributary_connector_status{id="http:off"}'), 0);
  });

  it('follows the rules table: a rule created through the API appears, a deleted one goes', async () => {
    const login = await fetch(`http://127.0.0.1:${node.httpPort}/api/v5/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'public' }) });
    const bearer = { authorization: `Bearer ${((await login.json()) as { token: string }).token}` };
    const rules = `http://127.0.0.1:${node.httpPort}/api/v5/rules`;
    const created = await fetch(rules, { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'made', sql: 'SELECT * FROM "m/#"', actions: [] }) });
    assert.equal(created.status, 201);
    let p = await scrape();
    assert.equal(p.values.get('tributary_rules_count'), 3);
    assert.equal(p.values.get('tributary_rule_enable{id="made"}'), 1);
    assert.equal(p.values.get('tributary_rule_matched{id="made"}'), 0);
    assert.equal((await fetch(`${rules}/made`, { method: 'DELETE', headers: bearer })).status, 204);
    p = await scrape();
    assert.equal(p.values.get('tributary_rules_count'), 2);
    assert.equal(p.values.has('tributary_rule_enable{id="made"}'), false);
  });
});

describe('prometheus routes in an API server', () => {
  const node = { nodeName: 'n1', version: 'x', running: true, stats: () => ({ 'connections.count': 3 }), metrics: () => ({ 'messages.received': 7, 'authentication.success': 2 }) };
  const collector = new PrometheusCollector(node, 'tributary_');
  after(() => collector.close());

  for (const basicAuth of [false, true]) {
    it(`enable_basic_auth ${basicAuth}: ${basicAuth ? '401 without a key' : '200 without a key'}; default prefix tributary_`, async () => {
      const server = new ApiServer({ host: '127.0.0.1', port: 0 }, node, silentLogger, { routes: prometheusRoutes(collector, basicAuth) });
      await server.start();
      try {
        for (const path of ['auth', 'data_integration']) assert.equal((await fetch(`http://127.0.0.1:${server.address!.port}/api/v5/prometheus/${path}`)).status, basicAuth ? 401 : 200, path);
        const res = await fetch(`http://127.0.0.1:${server.address!.port}/api/v5/prometheus/stats`);
        assert.equal(res.status, basicAuth ? 401 : 200);
        if (!basicAuth) {
          const p = parse(await res.text());
          assert.equal(p.values.get('tributary_connections_count'), 3);
          assert.equal(p.values.get('tributary_messages_received'), 7);
          assert.equal(p.values.get('tributary_authentication_success'), 2);
          // This node has no rule engine: the families are there, without samples.
          const di = parse(await (await fetch(`http://127.0.0.1:${server.address!.port}/api/v5/prometheus/data_integration`)).text());
          assert.equal(di.values.get('tributary_rules_count'), 0);
          assert.equal(di.types.get('tributary_rule_matched'), 'counter');
        }
      } finally {
        await server.stop();
      }
    });
  }
});
