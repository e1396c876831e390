import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@tributary/common';
import { ConnectInfo, HookMessage, HookRegistry } from '@tributary/hooks';
import { Traces } from '../src/addons/trace';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(maxBytes?: number): { hooks: HookRegistry; traces: Traces; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-trace-unit-'));
  dirs.push(dir);
  const hooks = new HookRegistry({ logger: silentLogger, timeoutMs: 1000 });
  const peers: Record<string, string> = { a: '10.0.0.1', b: '10.0.0.2' };
  return { hooks, dir, traces: new Traces({ hooks, dir, logger: silentLogger, node: 'n1', maxBytes, peerhostOf: (id) => peers[id] }) };
}
const conn = (clientId: string, peerhost: string): ConnectInfo => ({ clientId, username: undefined, peerhost, protocolVersion: 5, isSuperuser: false, keepalive: 60, cleanStart: true, expiryInterval: 0 });
const msg = (topic: string, clientId: string): HookMessage => ({ topic, payload: Buffer.from('abc'), qos: 1, retain: false, clientId, username: undefined, properties: undefined, timestamp: 0 });
const POINTS = ['client.connected', 'client.disconnected', 'session.subscribed', 'message.publish', 'message.delivered'] as const;

/** Drives every traced point once for clients a (10.0.0.1, topic x/1) and b (10.0.0.2, topic y/1). */
function traffic(hooks: HookRegistry): void {
  for (const [id, ip, topic] of [['a', '10.0.0.1', 'x/1'], ['b', '10.0.0.2', 'y/1']] as const) {
    hooks.notify('client.connected', conn(id, ip));
    hooks.notify('session.subscribed', conn(id, ip), topic, { qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    void hooks.publish(msg(topic, id), { waitFor: () => undefined });
    hooks.notify('message.delivered', conn(id, ip), msg(topic, 'z'));
    hooks.notify('client.disconnected', conn(id, ip), 'normal');
  }
}

describe('log traces', () => {
  it('register hooks only while a trace runs', () => {
    const { hooks, traces } = setup();
    assert.ok(POINTS.every((p) => !hooks.has(p)));
    traces.create({ name: 't', type: 'clientid', clientid: 'a' });
    assert.ok(POINTS.every((p) => hooks.has(p)));
    traces.stop('t');
    assert.ok(POINTS.every((p) => !hooks.has(p)));
  });

  it('match by topic filter and by peer address', () => {
    const { hooks, traces, dir } = setup();
    traces.create({ name: 'topic', type: 'topic', topic: 'x/+' });
    traces.create({ name: 'ip', type: 'ip_address', ip_address: '10.0.0.2' });
    traffic(hooks);
    const kinds = (f: string): string[] => readFileSync(join(dir, `${f}.log`), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(1, 3).join(' '));
    assert.deepEqual(kinds('topic'), ['SUBSCRIBE clientid=a', 'PUBLISH_IN clientid=a', 'PUBLISH_OUT clientid=a']);
    assert.deepEqual(kinds('ip'), ['CONNECT clientid=b', 'SUBSCRIBE clientid=b', 'PUBLISH_IN clientid=b', 'PUBLISH_OUT clientid=b', 'DISCONNECT clientid=b']);
  });

  it('stop when the file would pass its bound, and say why', () => {
    const { hooks, traces } = setup(200);
    traces.create({ name: 't', type: 'clientid', clientid: 'a' });
    traffic(hooks);
    const [t] = traces.list();
    assert.equal(t!.status, 'stopped');
    assert.match(t!.reason!, /max size \(200 bytes\)/);
    assert.ok(t!.log_size.n1! > 0 && t!.log_size.n1! <= 200);
    assert.ok(!hooks.has('message.publish'));
  });

  it('stop by themselves at end_at', async () => {
    const { traces } = setup();
    traces.create({ name: 't', type: 'clientid', clientid: 'a', end_at: new Date(Date.now() + 100).toISOString() });
    assert.equal(traces.list()[0]!.status, 'running');
    const deadline = Date.now() + 5000;
    while (traces.list()[0]!.status !== 'stopped' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(traces.list()[0]!.status, 'stopped');
    assert.equal(traces.list()[0]!.reason, 'end_at reached');
  });
});
