import { it } from 'node:test';
import assert from 'node:assert/strict';
import { downlinkTopic, formatAck, formatSharedPicks, parseAck, parseSharedPicks, RoutedSession, sameClaim, supersedes } from '../src';

const rec = (o: Partial<RoutedSession>): RoutedSession => ({ clientId: 'c', expiryInterval: 60, subscriptions: [], disconnectedAt: null, ...o });

it('a higher epoch supersedes, whatever else the records say', () => {
  assert.equal(supersedes(rec({ epoch: 3, owner: null }), rec({ epoch: 2, owner: 'gw-a', claimedAt: 9 })), true);
  assert.equal(supersedes(rec({ epoch: 2, owner: 'gw-a', claimedAt: 9 }), rec({ epoch: 3, owner: null })), false);
  assert.equal(supersedes(rec({ epoch: 1 }), undefined), true);
});

it("the same claim's later writes supersede it, including its owner's offline record", () => {
  const claim = rec({ epoch: 4, owner: 'gw-a', incarnation: 'i1', claimedAt: 100 });
  const offline = rec({ epoch: 4, owner: null, incarnation: 'i1', claimedAt: 100, disconnectedAt: 200 });
  assert.equal(sameClaim(offline, claim), true);
  assert.equal(supersedes(offline, claim), true);
});

it('at equal epochs: an owned record beats an offline one, then the later claim, then the greater gateway name', () => {
  const released = rec({ epoch: 5, owner: null, claimedAt: 300 });
  const claimB = rec({ epoch: 5, owner: 'gw-b', incarnation: 'i2', claimedAt: 200 });
  assert.equal(supersedes(claimB, released), true);
  assert.equal(supersedes(released, claimB), false);
  const claimA = rec({ epoch: 5, owner: 'gw-a', incarnation: 'i3', claimedAt: 250 });
  assert.equal(supersedes(claimA, claimB), true, 'later claim');
  assert.equal(supersedes(claimB, claimA), false);
  const tieA = { ...claimA, claimedAt: 200 };
  assert.equal(supersedes(claimB, tieA), true, 'gw-b > gw-a');
  assert.equal(supersedes(tieA, claimB), false);
});

it('route acknowledgements and shared picks round-trip through their headers', () => {
  assert.deepEqual(parseAck(formatAck({ epoch: 7, ack: 3, from: -1 })), { epoch: 7, ack: 3, from: -1 });
  assert.equal(parseAck('7:x:1'), undefined);
  const picks: [string, string][] = [['$share/g/a/#', 'c1'], ['$share/h/a/+', 'c:2']];
  assert.deepEqual(parseSharedPicks(formatSharedPicks(picks)), picks);
});

it('names downlink topics with characters Kafka accepts', () => {
  assert.equal(downlinkTopic('gw-a@host.example:1'), 'downlink.gw-a_host.example_1');
});
