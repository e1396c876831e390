import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { ConfigProblem } from '@tributary/common';
import { type Connector, createConnector, createSource, type MqttPublish, parseAction, parseConnector, parseSource, type Source, type SourceMessage } from '../src/sinks';
import { closedPort, connectorSpec, sinkErrorOf, sinkOn, sourceSpec } from './helpers/sinks';
import { type MosquittoServer, noMosquitto, startMosquitto } from './helpers/mosquitto';

const skip = noMosquitto;

let mosquitto: MosquittoServer | undefined;
let port = 0;
let server = '';
const connectors: Connector[] = [];
const clients: MqttClient[] = [];
const sources: Source[] = [];

before(async () => {
  if (skip) return;
  mosquitto = await startMosquitto();
  port = mosquitto.port;
  server = mosquitto.server;
});

after(async () => {
  await Promise.all(sources.map((s) => s.stop().catch(() => undefined)));
  await Promise.all(connectors.map((c) => c.stop()));
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await mosquitto?.stop();
});

/** A plain mqtt.js client of the broker (ended in teardown). */
async function plainClient(protocolVersion: 4 | 5, clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync({ host: '127.0.0.1', port, protocolVersion, clientId, reconnectPeriod: 0 });
  clients.push(c);
  return c;
}

/** The next `n` messages a client receives. */
function nextMessages(c: MqttClient, n: number): Promise<{ topic: string; payload: string; qos: number; retain: boolean }[]> {
  return new Promise((resolve, reject) => {
    const got: { topic: string; payload: string; qos: number; retain: boolean }[] = [];
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${n} messages within 10 s`)), 10_000);
    const on = (topic: string, payload: Buffer, packet: { qos: number; retain: boolean }): void => {
      got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
      if (got.length === n) {
        clearTimeout(timer);
        c.off('message', on);
        resolve(got);
      }
    };
    c.on('message', on);
  });
}

/** A connector of the test broker (stopped in teardown). */
async function bridge(name: string, extra: Record<string, unknown> = {}): Promise<Connector> {
  const c = createConnector(connectorSpec('mqtt', name, { server, ...extra }), { node: 'test' });
  connectors.push(c);
  await c.start();
  return c;
}

/** Collects values; until(n) resolves with the first n (10 s at most). */
function collector<T>(what: string): { push(v: T): void; until(n: number): Promise<T[]> } {
  const all: T[] = [];
  const waiting: { n: number; resolve(v: T[]): void }[] = [];
  return {
    push(v) {
      all.push(v);
      for (const w of [...waiting]) if (all.length >= w.n) w.resolve(all.slice(0, w.n));
    },
    until(n) {
      if (all.length >= n) return Promise.resolve(all.slice(0, n));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: ${all.length} of ${n} within 10 s`)), 10_000);
        waiting.push({ n, resolve: (v) => (clearTimeout(timer), resolve(v)) });
      });
    },
  };
}

describe('MQTT sink and source', { skip }, () => {
  for (const proto of ['v3', 'v4', 'v5'] as const) {
    it(`${proto}: publishes rendered topic, qos, retain and payload to the remote broker`, async () => {
      const sub = await plainClient(5, `sub-${proto}`);
      await sub.subscribeAsync(`remote/${proto}/#`, { qos: 2 });
      const made = await sinkOn('mqtt', { server, proto_ver: proto }, { topic: `remote/${proto}/\${clientid}`, qos: '${qos}', retain: '${flags.retain}', payload: '${payload}' }, `egress_${proto}`);
      connectors.push(made.connector);
      assert.equal(made.connector.status(), 'connected');
      const got = nextMessages(sub, 3);
      await made.sink.send([
        { clientid: 'a', qos: 0, flags: { retain: false }, payload: 'zero' },
        { clientid: 'b', qos: 1, flags: { retain: false }, payload: 'one' },
        { clientid: 'c', qos: 2, flags: { retain: true }, payload: 'two' },
      ]);
      assert.deepEqual(await got, [
        { topic: `remote/${proto}/a`, payload: 'zero', qos: 0, retain: false },
        { topic: `remote/${proto}/b`, payload: 'one', qos: 1, retain: false },
        { topic: `remote/${proto}/c`, payload: 'two', qos: 2, retain: false },
      ]);
      const late = await plainClient(4, `late-${proto}`);
      const retained = nextMessages(late, 1);
      await late.subscribeAsync(`remote/${proto}/c`, { qos: 1 });
      assert.deepEqual(await retained, [{ topic: `remote/${proto}/c`, payload: 'two', qos: 1, retain: true }]);
      assert.deepEqual(made.sink.render({ clientid: 'x', qos: 1, flags: { retain: false }, payload: 'p' }) as MqttPublish, { topic: `remote/${proto}/x`, qos: 1, retain: false, payload: 'p' });
    });
  }

  it('sends the whole data map as JSON when the payload is empty; refuses bad topics and qos permanently', async () => {
    const sub = await plainClient(4, 'sub-json');
    await sub.subscribeAsync('json/#', { qos: 1 });
    const { sink, connector } = await sinkOn('mqtt', { server }, { topic: '${t}' }, 'egress_json');
    connectors.push(connector);
    const got = nextMessages(sub, 1);
    await sink.send([{ t: 'json/1', n: 1 }]);
    const [m] = await got;
    assert.deepEqual(JSON.parse(m!.payload), { t: 'json/1', n: 1 });
    assert.equal(m!.qos, 1, 'qos 1 by default');
    assert.equal((await sinkErrorOf(sink.send([{ t: 'json/+' }]))).retriable, false);
    assert.equal((await sinkErrorOf(sink.send([{ t: '' }]))).retriable, false);
    const { sink: badQos, connector: c2 } = await sinkOn('mqtt', { server }, { topic: 'x', qos: '${q}' }, 'egress_qos');
    connectors.push(c2);
    assert.equal((await sinkErrorOf(badQos.send([{ q: 3 }]))).retriable, false);
  });

  it('rejects as retriable when the remote broker is not reachable', async () => {
    const down = `127.0.0.1:${await closedPort()}`;
    const { sink, connector } = await sinkOn('mqtt', { server: down, connect_timeout: '2s' }, { topic: 't' }, 'egress_down');
    connectors.push(connector);
    assert.notEqual(connector.status(), 'connected');
    const err = await sinkErrorOf(sink.send([{ payload: 'x' }]));
    assert.equal(err.retriable, true);
    assert.equal(err.code, 'SINK_UNAVAILABLE');
  });

  for (const proto of ['v4', 'v5'] as const) {
    it(`${proto}: a source passes the remote's messages on with their properties`, async () => {
      const c = await bridge(`ingress_${proto}`, { proto_ver: proto });
      const src = createSource(sourceSpec('mqtt', `in_${proto}`, { connector: `ingress_${proto}`, parameters: { topic: `in/${proto}/#`, qos: 1 } }), c);
      sources.push(src);
      const seen = collector<SourceMessage>('source messages');
      await src.start(async (m) => seen.push(m));
      const pub = await plainClient(5, `pub-${proto}`);
      await pub.publishAsync(`in/${proto}/a`, 'hello', { qos: 1, properties: { userProperties: { site: 'north' }, contentType: 'text/plain' } });
      await pub.publishAsync('elsewhere', 'not for the source', { qos: 1 });
      await pub.publishAsync(`in/${proto}/b`, Buffer.from([0, 255]), { qos: 0, retain: true });
      const [a, b] = await seen.until(2);
      assert.equal(a!.topic, `in/${proto}/a`);
      assert.equal(a!.payload.toString(), 'hello');
      assert.equal(a!.qos, 1);
      assert.equal(a!.retain, false);
      assert.equal(a!.dup, false);
      assert.equal(a!.server, server);
      assert.ok(Math.abs(a!.receivedAt - Date.now()) < 10_000);
      if (proto === 'v5') {
        assert.deepEqual(a!.pubProps['User-Property'], { site: 'north' });
        assert.deepEqual(a!.pubProps['User-Property-Pairs'], [{ key: 'site', value: 'north' }]);
        assert.equal(a!.pubProps['Content-Type'], 'text/plain');
      } else assert.deepEqual(a!.pubProps, {});
      assert.deepEqual([...b!.payload], [0, 255]);
      assert.equal(b!.qos, 0);
      await src.stop();
    });
  }

  for (const proto of ['v4', 'v5'] as const) {
    it(`${proto}: a QoS 1 message whose handler rejected is redelivered (clean_start false)`, async () => {
      const c = await bridge(`redeliver_${proto}`, { proto_ver: proto, clean_start: false });
      const src = createSource(sourceSpec('mqtt', `r_${proto}`, { connector: `redeliver_${proto}`, parameters: { topic: `redo/${proto}`, qos: 1 } }), c);
      sources.push(src);
      let calls = 0;
      const attempts = collector<SourceMessage>('redelivery');
      await src.start(async (m) => {
        attempts.push(m);
        if (++calls === 1) throw new Error('not now');
      });
      const pub = await plainClient(4, `pub-redo-${proto}`);
      await pub.publishAsync(`redo/${proto}`, 'again', { qos: 1 });
      const [first, second] = await attempts.until(2);
      assert.equal(first!.payload.toString(), 'again');
      assert.equal(second!.payload.toString(), 'again');
      assert.equal(second!.dup, true, 'the remote resent it');
      await src.stop();
    });

    it(`${proto}: a QoS 1 message still being handled when the process stopped is redelivered to the next one`, async () => {
      const name = `crash_${proto}`;
      const c1 = await bridge(name, { proto_ver: proto, clean_start: false });
      const s1 = createSource(sourceSpec('mqtt', name, { connector: name, parameters: { topic: `crash/${proto}`, qos: 1 } }), c1);
      let handling!: () => void;
      const started = new Promise<void>((r) => (handling = r));
      await s1.start(() => {
        handling();
        return new Promise<void>(() => undefined); // never resolves: the process "dies" first
      });
      const pub = await plainClient(4, `pub-crash-${proto}`);
      await pub.publishAsync(`crash/${proto}`, 'survive', { qos: 1 });
      await started;
      await s1.stop();
      await c1.stop();

      const c2 = await bridge(name, { proto_ver: proto, clean_start: false });
      const s2 = createSource(sourceSpec('mqtt', name, { connector: name, parameters: { topic: `crash/${proto}`, qos: 1 } }), c2);
      sources.push(s2);
      const again2 = collector<SourceMessage>('redelivery after restart');
      await s2.start(async (m) => again2.push(m));
      const [again] = await again2.until(1);
      assert.equal(again!.payload.toString(), 'survive');
      assert.equal(again!.topic, `crash/${proto}`);
    });
  }
});

describe('MQTT config', () => {
  it('validates connectors, actions and sources, naming the field', () => {
    for (const [p, want] of [
      [parseConnector('mqtt', 'm', {}), /^connectors\.mqtt\.m\.server: required/],
      [parseConnector('mqtt', 'm', { server: 'h', proto_ver: 'v6' }), /^connectors\.mqtt\.m\.proto_ver: /],
      [parseConnector('mqtt', 'm', { server: 'h', keepalive: 'often' }), /^connectors\.mqtt\.m\.keepalive: /],
      [parseConnector('mqtt', 'm', { server: 'h', bridge_mode: true }), /bridge_mode is not supported/],
      [parseAction('mqtt', 'a', { connector: 'm', parameters: {} }), /^actions\.mqtt\.a\.parameters\.topic: required/],
      [parseAction('mqtt', 'a', { connector: 'm', parameters: { topic: 't', qos: 3 } }), /^actions\.mqtt\.a\.parameters\.qos: /],
      [parseSource('mqtt', 's', { connector: 'm', parameters: { topic: 'a/#/b' } }), /^sources\.mqtt\.s\.parameters\.topic: not a topic filter/],
      [parseSource('kafka_consumer', 's', {}), /^sources\.kafka_consumer\.s: unknown type/],
    ] as const) {
      assert.ok(p instanceof ConfigProblem && want.test(p.message), `${want}: ${JSON.stringify(p)}`);
    }
    const c = parseConnector('mqtt', 'm', { server: 'broker.example:1883' });
    assert.ok(!(c instanceof ConfigProblem) && c.type === 'mqtt');
    assert.equal(c.keepalive, 160_000);
    assert.equal(c.proto_ver, 'v4');
    assert.equal(c.clean_start, true);
    const s = parseSource('mqtt', 's', { connector: 'm', parameters: { topic: '$share/g/t/#' } });
    assert.ok(!(s instanceof ConfigProblem));
    assert.equal(s.parameters.qos, 1);
    const a = parseAction('mqtt', 'a', { connector: 'm', parameters: { topic: 't', qos: 2, retain: '${flags.retain}' } });
    assert.ok(!(a instanceof ConfigProblem) && a.type === 'mqtt');
    assert.equal(a.parameters.qos, 2);
    assert.equal(a.parameters.retain, '${flags.retain}');
  });
});
