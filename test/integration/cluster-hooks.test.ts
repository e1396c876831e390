// Hooks scaled out (docs/plugins.md, "Where hooks fire when scaled out"): the same plugin loaded
// by a router and a gateway over a real Kafka. The gateway fires message.publish; the router,
// which alone knows that a message has no subscribers, fires message.dropped.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrokerProcess, kafkaNodeEnv, startBroker } from '../helpers/broker';
import { clientTracker, waitForMessage } from '../helpers/util';

const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `h${process.pid}x${Date.now()}.`;
const dir = mkdtempSync(join(tmpdir(), 'tributary-cluster-hooks-'));
const plugin = join(dir, 'where.mjs');
writeFileSync(
  plugin,
  `let ctx;
export default {
  name: 'where',
  version: '1.0.0',
  start(c) { ctx = c; },
  hooks: {
    'message.publish'(m) {
      if (m.topic === 'hooks-test/shout') return { ...m, payload: Buffer.from(m.payload.toString().toUpperCase()) };
    },
    'message.dropped'(m, reason) {
      ctx.publish({ topic: 'hooks-test/dropped', payload: m.topic + ' ' + reason, qos: 1 });
    },
  },
};
`,
);
const env = (name: string): Record<string, string> => kafkaNodeEnv(name, prefix, { TRIBUTARY_PLUGINS: JSON.stringify([plugin]) });

let router: BrokerProcess;
let gateway: BrokerProcess;
const { client } = clientTracker(() => gateway.url);

before(async () => {
  assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
  router = await startBroker({ command: 'router', env: env('router') });
  gateway = await startBroker({ command: 'gateway', env: env('gw-hooks') });
});
after(async () => {
  await gateway?.stop();
  await router?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('a plugin scaled out', () => {
  it('message.publish runs on the publisher\'s gateway, message.dropped on the router', async () => {
    const sub = await client({ protocolVersion: 5 });
    await sub.client.subscribeAsync(['hooks-test/shout', 'hooks-test/dropped'], { qos: 1 });
    const pub = await client({ protocolVersion: 5 });
    await pub.client.publishAsync('hooks-test/shout', 'quiet', { qos: 1 });
    assert.equal((await waitForMessage(sub.inbox, (m) => m.topic === 'hooks-test/shout', 'the rewritten message', 20_000)).payload.toString(), 'QUIET');
    await pub.client.publishAsync('nobody/listens', 'x', { qos: 1 });
    const dropped = await waitForMessage(sub.inbox, (m) => m.topic === 'hooks-test/dropped', "the router plugin's report", 20_000);
    assert.equal(dropped.payload.toString(), 'nobody/listens no_subscribers');
  });
});
