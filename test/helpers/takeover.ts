// Session takeover scenarios shared by the single-node and the scaled-out tests: a takeover
// while messages are in flight, and two CONNECTs racing for one client id. Every check counts
// PUBLISH packets on the wire (raw clients) and ends on a marker, never on a sleep.
import assert from 'node:assert/strict';
import type * as mp from 'mqtt-packet';
import { RawClient, wirePayloads, wirePublish, wireSubscriber } from './raw';
import type { Opened } from './util';

const session = { clean: false, properties: { sessionExpiryInterval: 300 } };

/**
 * A persistent 5.0 session on `firstPort` receives `count` QoS 1 messages and acknowledges none;
 * a second connection for the client id on `againPort` takes it over: the first gets
 * DISCONNECT 0x8E, the second a present session and every unacknowledged message again (DUP,
 * same packet id), then new messages, each once. Returns the new connection.
 */
export async function takeoverWithInflight(firstPort: number, againPort: number, pub: Opened, clientId: string, topic: string, count = 5): Promise<RawClient> {
  const first = await RawClient.connected(firstPort, clientId, 5, session);
  first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
  await first.next('suback');
  const sent = Array.from({ length: count }, (_, i) => `inflight-${i}`);
  for (const p of sent) await pub.client.publishAsync(topic, p, { qos: 1 });
  await wirePublish(first, sent.at(-1)!);
  const inflight = first.packets.filter((p): p is mp.IPublishPacket => p.cmd === 'publish');
  assert.deepEqual(inflight.map((p) => p.payload.toString()), sent, 'in flight at the first connection, unacknowledged');

  const again = await wireSubscriber(againPort, clientId, undefined, session);
  try {
    assert.equal((again.packets[0] as mp.IConnackPacket).sessionPresent, true, 'the session is taken over, not started afresh');
    await first.waitClosed(10_000);
    assert.equal(first.disconnectReason(), 0x8e, 'the first connection is told it was taken over');
    await pub.client.publishAsync(topic, 'after', { qos: 1 });
    await wirePublish(again, 'after');
    assert.deepEqual(wirePayloads(again), [...sent, 'after'], 'every unacknowledged message again, then the new one, each once');
    const resent = again.packets.filter((p): p is mp.IPublishPacket => p.cmd === 'publish').slice(0, count);
    assert.deepEqual(
      resent.map((p) => [p.dup, p.messageId]),
      inflight.map((p) => [true, p.messageId]),
      'resent with DUP and the same packet ids',
    );
  } catch (err) {
    again.destroy();
    throw err;
  } finally {
    first.destroy();
  }
  return again;
}

/**
 * Two connections send CONNECT for one persistent client id in the same instant (to `portA` and
 * `portB`; the same port on a single node). Exactly one of them ends up holding the session:
 * the other is taken over (DISCONNECT 0x8E) or, with `refusalAllowed`, refused (CONNACK 0x88),
 * and a message published to the
 * session's subscription reaches the survivor once. Returns the survivor.
 */
export async function racingConnects(portA: number, portB: number, pub: Opened, clientId: string, topic: string, refusalAllowed = false): Promise<RawClient> {
  // The session exists with a subscription, so whoever wins has something to receive.
  const setup = await wireSubscriber(portA, clientId, topic, session);
  setup.send({ cmd: 'disconnect' });
  await setup.waitClosed();
  const [x, y] = await Promise.all([RawClient.open(portA, 5), RawClient.open(portB, 5)]);
  for (const c of [x, y]) {
    c.onPacket((p) => {
      if (p.cmd === 'publish' && p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId! });
    });
  }
  const connect = { cmd: 'connect', clientId, protocolVersion: 5, protocolId: 'MQTT', keepalive: 60, ...session } as mp.IConnectPacket;
  x.send(connect);
  y.send(connect);
  try {
    // Each gets a CONNACK or is closed; then the loser is closed and the winner stays.
    const settled = (c: RawClient): Promise<unknown> => Promise.race([c.next('connack', undefined, 10_000), c.waitClosed(10_000)]);
    await Promise.all([settled(x), settled(y)]);
    await Promise.race([x.waitClosed(10_000), y.waitClosed(10_000)]);
    const [winner, loser] = x.closed ? [y, x] : [x, y];
    assert.equal(winner.closed, false, 'one connection holds the session');
    assert.equal((winner.packets[0] as mp.IConnackPacket).reasonCode ?? 0, 0);
    assert.equal((winner.packets[0] as mp.IConnackPacket).sessionPresent, true);
    // The loser either held the session first and was taken over (CONNACK 0, then DISCONNECT
    // 0x8E) or, scaled out, lost the race for the session's lease and was refused with CONNACK
    // 0x88 (Server unavailable: try again).
    const got = loser.packets.map((p) => `${p.cmd}:${String((p as { reasonCode?: number }).reasonCode ?? 0)}`);
    assert.ok(
      ['connack:0,disconnect:142', ...(refusalAllowed ? ['connack:136'] : [])].includes(got.join(',')),
      `the loser got ${got.join(', ') || 'nothing'}`,
    );
    await pub.client.publishAsync(topic, 'to the winner', { qos: 1 });
    await wirePublish(winner, 'to the winner');
    await pub.client.publishAsync(topic, 'marker', { qos: 1 });
    await wirePublish(winner, 'marker');
    assert.deepEqual(wirePayloads(winner), ['to the winner', 'marker']);
    assert.deepEqual(wirePayloads(loser), [], 'nothing reached the loser');
    assert.equal(winner.closed, false);
    loser.destroy();
    return winner;
  } catch (err) {
    x.destroy();
    y.destroy();
    throw err;
  }
}
