// Prometheus scraping and the monitor against a real broker after MQTT traffic: the exposition
// parses, counters moved, `prometheus.prefix = emqx_` gives EMQX's names; the API key is only
// needed with prometheus.enable_basic_auth.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

describe('prometheus routes in an API server', () => {
  const node = { nodeName: 'n1', version: 'x', running: true, stats: () => ({ 'connections.count': 3 }), metrics: () => ({ 'messages.received': 7, 'authentication.success': 2 }) };
  const collector = new PrometheusCollector(node, 'tributary_');
  after(() => collector.close());

  for (const basicAuth of [false, true]) {
    it(`enable_basic_auth ${basicAuth}: ${basicAuth ? '401 without a key' : '200 without a key'}; default prefix tributary_`, async () => {
      const server = new ApiServer({ host: '127.0.0.1', port: 0 }, node, silentLogger, { routes: prometheusRoutes(collector, basicAuth) });
      await server.start();
      try {
        const res = await fetch(`http://127.0.0.1:${server.address!.port}/api/v5/prometheus/stats`);
        assert.equal(res.status, basicAuth ? 401 : 200);
        if (!basicAuth) {
          const p = parse(await res.text());
          assert.equal(p.values.get('tributary_connections_count'), 3);
          assert.equal(p.values.get('tributary_messages_received'), 7);
          assert.equal(p.values.get('tributary_authentication_success'), 2);
        }
      } finally {
        await server.stop();
      }
    });
  }
});
