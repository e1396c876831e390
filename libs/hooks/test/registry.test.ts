import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { silentLogger } from '@tributary/common';
import { ClientInfo, ConnectInfo, HookMessage, HookOptions, HookRegistry, PRIORITIES } from '../src';

const client: ClientInfo = { clientId: 'c1', username: 'u', peerhost: '127.0.0.1', protocolVersion: 5, isSuperuser: false };
const conn: ConnectInfo = { ...client, keepalive: 60, cleanStart: true, expiryInterval: 0 };
const ctx = { waitFor: () => undefined };

function msg(topic: string, payload = 'x'): HookMessage {
  return { topic, payload: Buffer.from(payload), qos: 1, retain: false, clientId: 'c1', username: 'u', properties: undefined, timestamp: 1 };
}

function registry(timeoutMs = 1000): HookRegistry {
  return new HookRegistry({ logger: silentLogger, timeoutMs });
}

describe('hook registry', () => {
  it('refuses unknown hook points and priorities, naming who registered them', () => {
    const r = registry();
    const addUntyped = r.add.bind(r) as unknown as (point: string, opts: HookOptions, fn: () => void) => void;
    assert.throws(() => addUntyped('session.takeovered', { name: 'old-plugin', priority: 'plugins' }, () => undefined), /unknown hook point "session.takeovered" \(registered by old-plugin\)/);
    assert.throws(() => r.add('client.connected', { name: 'x', priority: 'nope' as never }, () => undefined), /unknown hook priority/);
    assert.throws(() => r.add('client.connected', { name: 'x', priority: 'plugins', topics: ['a/#'] }, () => undefined), /topics apply to message/);
  });

  it('runs callbacks by priority, then in registration order', () => {
    const r = registry();
    const order: string[] = [];
    r.add('client.connected', { name: 'plugin-a', priority: 'plugins' }, () => void order.push('plugin-a'));
    r.add('client.connected', { name: 'exhook', priority: 'exhook' }, () => void order.push('exhook'));
    r.add('client.connected', { name: 'plugin-b', priority: 'plugins' }, () => void order.push('plugin-b'));
    r.add('client.connected', { name: 'sys', priority: 'sys' }, () => void order.push('sys'));
    r.notify('client.connected', conn);
    assert.deepEqual(order, ['sys', 'plugin-a', 'plugin-b', 'exhook']);
    assert.deepEqual(r.names('client.connected'), order);
    assert.ok(PRIORITIES.rewrite > PRIORITIES.delayed && PRIORITIES.delayed > PRIORITIES.plugins);
  });

  it('a notification callback that throws is counted and skipped; the others still run', () => {
    const r = registry();
    let later = 0;
    r.add('client.connected', { name: 'bad', priority: 'plugins' }, () => {
      throw new Error('boom');
    });
    r.add('client.connected', { name: 'good', priority: 'plugins' }, () => void later++);
    r.notify('client.connected', conn);
    assert.equal(later, 1);
    assert.equal(r.counters['hooks.callbacks.failed'], 1);
    assert.equal(r.failures.get('client.connected/bad'), 1);
  });

  it('message.publish: continue with a new message, stop with one, or drop; synchronous replies stay synchronous', () => {
    const r = registry();
    r.add('message.publish', { name: 'upper', priority: 'plugins' }, (m) => ({ ...m, payload: Buffer.from(m.payload.toString().toUpperCase()) }));
    r.add('message.publish', { name: 'dropper', priority: 'plugins' }, (m) => (m.topic === 'drop/me' ? { stop: true, drop: true } : undefined));
    r.add('message.publish', { name: 'stopper', priority: 'plugins' }, (m) => (m.topic === 'stop/here' ? { stop: true, message: { ...m, topic: 'stopped' } } : undefined));
    let reachedLast = 0;
    r.add('message.publish', { name: 'last', priority: 'exhook' }, () => void reachedLast++);
    const out = r.publish(msg('a/b', 'hello'), ctx);
    assert.ok(!(out instanceof Promise));
    assert.equal(out?.payload.toString(), 'HELLO');
    assert.equal(r.publish(msg('drop/me'), ctx), null);
    assert.equal((r.publish(msg('stop/here'), ctx) as HookMessage).topic, 'stopped');
    assert.equal(reachedLast, 1, 'a stop skips the rest of the chain');
  });

  it('message hooks never see $SYS/ topics, and topic filters select messages', () => {
    const r = registry();
    const seen: string[] = [];
    r.add('message.publish', { name: 'delayed', priority: 'delayed', topics: ['$delayed/#'] }, (m) => void seen.push(`d:${m.topic}`));
    r.add('message.publish', { name: 'all', priority: 'plugins' }, (m) => void seen.push(`a:${m.topic}`));
    r.add('message.delivered', { name: 'one', priority: 'plugins', topics: ['x/+'] }, (_c, m) => void seen.push(`dv:${m.topic}`));
    r.publish(msg('$SYS/brokers/n/uptime'), ctx);
    r.publish(msg('$delayed/5/t'), ctx);
    r.publish(msg('t'), ctx);
    r.notify('message.delivered', client, msg('x/1'));
    r.notify('message.delivered', client, msg('y/1'));
    r.notify('message.delivered', client, msg('$SYS/x'));
    assert.deepEqual(seen, ['d:$delayed/5/t', 'a:$delayed/5/t', 'a:t', 'dv:x/1']);
    assert.equal(r.wants('message.publish', '$SYS/a'), false);
    assert.equal(r.wants('message.delivered', 'y/1'), false);
    assert.equal(r.wants('message.delivered', 'x/2'), true);
  });

  it('an async publish callback that times out is skipped: the message passes on', async () => {
    const r = registry(30);
    r.add('message.publish', { name: 'slow', priority: 'plugins' }, () => new Promise(() => undefined));
    r.add('message.publish', { name: 'tag', priority: 'exhook' }, (m) => ({ ...m, topic: `${m.topic}/tagged` }));
    const out = await r.publish(msg('a'), ctx);
    assert.equal(out?.topic, 'a/tagged');
    assert.equal(r.counters['hooks.callbacks.timeout'], 1);
  });

  it('authenticate: stop with a result, continue with one, and fail closed on errors and timeouts', async () => {
    const r = registry(30);
    const cred = { clientId: 'bad-1', username: undefined, password: undefined, peerhost: '127.0.0.1', protocolVersion: 4 };
    r.add('client.authenticate', { name: 'prefix', priority: 'plugins' }, (c) => (c.clientId.startsWith('bad-') ? { stop: true, result: 'deny' } : undefined));
    r.add('client.authenticate', { name: 'super', priority: 'plugins' }, async (c) => (c.clientId === 'root' ? { result: 'allow', isSuperuser: true } : undefined));
    assert.deepEqual(r.authenticate(cred, { result: 'allow' }), { result: 'deny' });
    assert.deepEqual(await r.authenticate({ ...cred, clientId: 'root' }, { result: 'allow' }), { result: 'allow', isSuperuser: true });
    assert.deepEqual(await r.authenticate({ ...cred, clientId: 'ok' }, { result: 'allow' }), { result: 'allow' });
    r.add('client.authenticate', { name: 'broken', priority: 'exhook' }, () => {
      throw new Error('down');
    });
    assert.equal((await r.authenticate({ ...cred, clientId: 'ok' }, { result: 'allow' })).result, 'deny');
    const slow = registry(20);
    slow.add('client.authorize', { name: 'slow', priority: 'plugins' }, () => new Promise(() => undefined));
    assert.equal(await slow.authorize(client, { action: 'publish', topic: 't', qos: 0, retain: false }, 'allow'), 'deny');
    assert.equal(slow.counters['hooks.callbacks.timeout'], 1);
  });

  it('a promise from a synchronous fold point (client.subscribe) counts as a failure and is skipped', () => {
    const r = registry();
    const opts = { qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
    r.add('client.subscribe', { name: 'async-by-mistake', priority: 'plugins' }, (async () => [{ filter: 'other', options: opts }]) as never);
    const out = r.subscribe(client, [{ filter: 'a', options: opts }]);
    assert.deepEqual(out, [{ filter: 'a', options: opts }]);
    assert.equal(r.failures.get('client.subscribe/async-by-mistake'), 1);
  });

  it('subscribe and unsubscribe fold over the filter lists; removal unregisters', () => {
    const r = registry();
    const off = r.add('client.subscribe', { name: 'rewrite', priority: 'rewrite' }, (_c, fs) => fs.map((f) => ({ ...f, filter: `x/${f.filter}` })));
    r.add('client.unsubscribe', { name: 'rewrite', priority: 'rewrite' }, (_c, fs) => ({ stop: true, filters: fs.map((f) => `x/${f}`) }));
    const opts = { qos: 1 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const };
    assert.deepEqual(r.subscribe(client, [{ filter: 'a', options: opts }]), [{ filter: 'x/a', options: opts }]);
    assert.deepEqual(r.unsubscribe(client, ['a']), ['x/a']);
    off();
    assert.equal(r.has('client.subscribe'), false);
    assert.deepEqual(r.subscribe(client, [{ filter: 'a', options: opts }]), [{ filter: 'a', options: opts }]);
  });
});
