// JavaScript plugins (docs/plugins.md) in a real broker process with real MQTT clients: the
// example plugin under examples/ (an ES module) and a CommonJS one, loaded in order from the
// `plugins` list, and the start-up errors an operator gets for a broken plugin.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { BrokerProcess, ROOT, startBroker } from '../helpers/broker';
import { end } from '../helpers/clients';
import { clientTracker, uniqueTopic, waitForMessage, waitForPayload } from '../helpers/util';

const EXAMPLE = join(ROOT, 'examples', 'plugins', 'topic-guard.mjs');
const dir = mkdtempSync(join(tmpdir(), 'tributary-plugins-'));
const STATS = 'plugin-test/deliveries';

/** A CommonJS plugin: module.exports is the plugin; it moves cjs/in/<x> to cjs/out/<x>. */
const CJS = `module.exports = {
  name: 'mover',
  version: '0.0.1',
  hooks: {
    'message.publish'(m) {
      if (m.topic.startsWith('cjs/in/')) return { ...m, topic: 'cjs/out/' + m.topic.slice(7) };
    },
  },
};`;

function plugin(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, body);
  return file;
}

let b: BrokerProcess;
const { client, clients } = clientTracker(() => b.url);

before(async () => {
  b = await startBroker({
    env: {
      TRIBUTARY_PLUGINS: JSON.stringify([EXAMPLE, plugin('mover.cjs', CJS)]),
      TRIBUTARY_PLUGIN_CONFIG: JSON.stringify({ 'topic-guard': { upper_topic: 'shout', refuse_prefix: 'intruder-', stats_topic: STATS, stats_interval_ms: 50 } }),
    },
  });
});
after(async () => {
  await end(...clients);
  await b?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the example plugin (examples/plugins/topic-guard.mjs)', () => {
  test('counts deliveries in message.delivered and publishes the count', async () => {
    const stats = await client({ protocolVersion: 5 });
    await stats.client.subscribeAsync(STATS, { qos: 1 });
    const topic = uniqueTopic('count');
    const subs = [await client(), await client()];
    for (const s of subs) await s.client.subscribeAsync(topic, { qos: 1 });
    const pub = await client();
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(topic, `m${i}`, { qos: 1 });
    // Two subscribers × five messages; the stats subscriber's own deliveries are not counted.
    await waitForPayload(stats.inbox, '10');
  });

  test('rewrites the payload of messages on its topic in message.publish, and only there', async () => {
    const sub = await client({ protocolVersion: 5 });
    await sub.client.subscribeAsync(['shout', 'calm'], { qos: 1 });
    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync('shout', 'hello there', { qos: 1 });
    await pub.client.publishAsync('calm', 'hello there', { qos: 0 });
    assert.equal((await waitForMessage(sub.inbox, (m) => m.topic === 'shout', 'shout')).payload.toString(), 'HELLO THERE');
    assert.equal((await waitForMessage(sub.inbox, (m) => m.topic === 'calm', 'calm')).payload.toString(), 'hello there');
  });

  test('refuses a client id prefix in client.authenticate: CONNACK 0x87 (5.0) and 5 (3.1.1)', async () => {
    for (const [protocolVersion, code] of [
      [5, 0x87],
      [4, 5],
    ] as const) {
      const c = mqtt.connect(b.url, { clientId: `intruder-${protocolVersion}`, protocolVersion, reconnectPeriod: 0 });
      const err = await new Promise<Error & { code?: number }>((resolve) => c.once('error', resolve));
      assert.equal(err.code, code);
      await c.endAsync(true);
    }
    const ok = await client({ clientId: 'visitor-1' });
    assert.ok(ok.client.connected);
  });

  test('a CommonJS plugin loaded after it runs too (module.exports)', async () => {
    const sub = await client();
    await sub.client.subscribeAsync('cjs/out/#', { qos: 1 });
    const pub = await client();
    await pub.client.publishAsync('cjs/in/a', 'moved', { qos: 1 });
    const got = await waitForMessage(sub.inbox, (m) => m.topic === 'cjs/out/a', 'the moved message');
    assert.equal(got.payload.toString(), 'moved');
  });
});

describe('a plugin that cannot be used stops start-up, naming the plugin and the problem', () => {
  const cases: [string, string, RegExp][] = [
    ['an unknown hook point', `export default { name: 'old', version: '1', hooks: { 'session.takeovered'() {} } };`, /plugin old: unknown hook point \\?"session\.takeovered/],
    ['no name', `export default { version: '1', hooks: {} };`, /exports no name/],
    ['a start() that throws', `export default { name: 'grumpy', version: '1', start() { throw new Error('no database'); } };`, /plugin grumpy: start\(\) failed: no database/],
    ['a module that does not parse', `export default {`, /cannot be loaded/],
  ];
  for (const [what, body, expected] of cases) {
    test(what, async () => {
      const file = plugin(`bad-${cases.findIndex((c) => c[0] === what)}.mjs`, body);
      await assert.rejects(startBroker({ env: { TRIBUTARY_PLUGINS: JSON.stringify([file]) }, startTimeoutMs: 15_000 }), expected);
    });
  }

  test('a module that does not exist', async () => {
    await assert.rejects(startBroker({ env: { TRIBUTARY_PLUGINS: JSON.stringify(['./no/such/plugin.mjs']) }, startTimeoutMs: 15_000 }), /plugin \.\/no\/such\/plugin\.mjs: cannot be loaded/);
  });
});
