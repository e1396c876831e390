import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Router, SubscriptionOptions } from '../src';

const opts = (qos: 0 | 1 | 2): SubscriptionOptions => ({ qos, noLocal: false, retainAsPublished: false, retainHandling: 0 });

it('merges overlapping subscriptions of one client into one route', () => {
  const r = new Router();
  r.subscribe('c1', 'a/+', opts(0));
  r.subscribe('c1', 'a/#', opts(2));
  r.subscribe('c2', 'a/b', opts(1));
  const routes = r.routes('a/b');
  assert.deepEqual(routes.map((x) => [x.clientId, x.subscriptions.map((s) => s.qos).sort()]).sort(), [
    ['c1', [0, 2]],
    ['c2', [1]],
  ]);
  r.unsubscribe('c1', 'a/#');
  assert.deepEqual(r.routes('a/b').find((x) => x.clientId === 'c1')?.subscriptions.map((s) => s.qos), [0]);
});

it('keeps a plain and an exclusive subscription of one client to one filter apart', () => {
  const r = new Router();
  assert.equal(r.subscribe('c1', 't', opts(1)), true);
  assert.equal(r.subscribe('c1', '$exclusive/t', opts(2)), true);
  assert.equal(r.subscribe('c2', '$exclusive/t', opts(0)), false, 'held by c1');
  assert.deepEqual(r.routes('t').map((x) => [x.clientId, x.subscriptions.length]), [['c1', 2]]);
  assert.equal(r.unsubscribe('c1', '$exclusive/t'), true);
  assert.deepEqual(r.routes('t').map((x) => [x.clientId, x.subscriptions.map((s) => s.qos)]), [['c1', [1]]], 'the plain one stays');
  assert.equal(r.subscribe('c2', '$exclusive/t', opts(0)), true, 'released');
});

it('groups $share and $queue members and spreads messages round robin', () => {
  const r = new Router();
  for (const c of ['m1', 'm2', 'm3']) r.subscribe(c, '$share/g/s/#', opts(1));
  r.subscribe('m4', '$queue/s/#', opts(1));
  r.subscribe('m5', '$share/$queue/s/#', opts(1));
  const groups = r.sharedGroups('s/x');
  assert.equal(groups.length, 2);
  const g = groups.find((x) => x.group === 'g')!;
  const msg = { topic: 's/x', payload: Buffer.alloc(0), qos: 1 as const, retain: false, from: 'p', timestamp: 0, properties: undefined, offset: -1 };
  const picks = Array.from({ length: 6 }, () => g.pick('round_robin', msg, () => true));
  assert.deepEqual(picks, ['m1', 'm2', 'm3', 'm1', 'm2', 'm3']);
  assert.deepEqual([...groups.find((x) => x.group === '$queue')!.members.keys()], ['m4', 'm5']);
});
