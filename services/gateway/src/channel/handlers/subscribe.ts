import type * as mp from 'mqtt-packet';
import type { SubscribeRequest } from '@tributary/hooks';
import { checkTopicFilter, hasWildcard, QoS, RC } from '@tributary/mqtt';
import { EXCLUSIVE_PREFIX, parseShared, SubscriptionOptions } from '@tributary/router';
import type { Channel } from '../channel';
import { ProtocolViolation } from '../protocol';
import { Step, Steps, wait } from '../steps';

/**
 * SUBSCRIBE (§3.8): client.subscribe may rewrite the filters, client.authorize decides each one,
 * one reason code per filter, SUBACK once durable, then retained messages.
 */
export function handleSubscribe(ch: Channel, packet: mp.ISubscribePacket): Steps {
  // At least one filter [MQTT-3.8.3-3] (5.0: [MQTT-3.8.3-2], "a Protocol Error").
  if (packet.subscriptions.length === 0) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'SUBSCRIBE without topic filters');
  const subId = packet.properties?.subscriptionIdentifier;
  if (subId === 0) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'subscription identifier 0'); // [MQTT-3.8.2-?]
  const asked: SubscribeRequest[] = packet.subscriptions.map((sub) => {
    const options: SubscriptionOptions = { qos: sub.qos as QoS, noLocal: sub.nl === true, retainAsPublished: sub.rap === true, retainHandling: (sub.rh ?? 0) as 0 | 1 | 2 };
    if (subId !== undefined) options.subscriptionId = subId as number;
    return { filter: sub.topic, options };
  });
  const hooks = ch.broker.hooks;
  const client = ch.client!;
  const requests = sameLength(ch, asked, hooks.has('client.subscribe') ? hooks.subscribe(client, asked) : asked);
  if (!hooks.has('client.authorize') || client.isSuperuser) {
    if (hooks.has('client.check_authz_complete')) {
      for (const r of requests) hooks.notify('client.check_authz_complete', client, { action: 'subscribe', topic: r.filter, qos: r.options.qos, retain: false }, 'allow', client.isSuperuser ? 'superuser' : 'default');
    }
    return subscribe(ch, packet, requests, undefined);
  }
  const decisions = requests.map((r) => hooks.authorize(client, { action: 'subscribe', topic: r.filter, qos: r.options.qos, retain: false }, 'allow'));
  if (!decisions.some((d) => d instanceof Promise)) return subscribe(ch, packet, requests, decisions as ('allow' | 'deny')[]);
  return wait({ wait: Promise.all(decisions), then: (d) => subscribe(ch, packet, requests, d), hold: true });
}

/** A client.subscribe/unsubscribe hook must keep one entry per filter (one reason code each): otherwise its answer is ignored. */
function sameLength<T>(ch: Channel, asked: T[], answered: T[]): T[] {
  if (answered.length === asked.length) return answered;
  ch.log.warn({ clientId: ch.clientId, asked: asked.length, answered: answered.length }, 'a subscribe hook changed the number of filters; its answer is ignored');
  return asked;
}

function subscribe(ch: Channel, packet: mp.ISubscribePacket, requests: SubscribeRequest[], decisions: ('allow' | 'deny')[] | undefined): Steps {
  const mqtt = ch.config.mqtt;
  const session = ch.session!;
  const granted: number[] = [];
  const retained: [string, SubscriptionOptions, boolean][] = [];
  for (let i = 0; i < requests.length; i++) {
    const { filter, options } = requests[i]!;
    if (decisions?.[i] === 'deny') {
      ch.broker.metrics['authorization.deny']++;
      granted.push(ch.dialect.subscribeFailure(RC.NOT_AUTHORIZED));
      continue;
    }
    const shared = parseShared(filter);
    const exclusive = filter.startsWith(EXCLUSIVE_PREFIX);
    const inner = shared ? shared.filter : exclusive ? filter.slice(EXCLUSIVE_PREFIX.length) : filter;
    if (shared === null || checkTopicFilter(inner, mqtt.max_topic_levels) || (exclusive && !mqtt.exclusive_subscription)) {
      granted.push(ch.dialect.subscribeFailure(RC.TOPIC_FILTER_INVALID));
      continue;
    }
    if (shared && !mqtt.shared_subscription) {
      granted.push(ch.dialect.subscribeFailure(RC.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED));
      continue;
    }
    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
    if (shared && options.noLocal) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'No Local on a shared subscription');
    if (!mqtt.wildcard_subscription && hasWildcard(inner)) {
      granted.push(ch.dialect.subscribeFailure(RC.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED));
      continue;
    }
    const { existed, refused } = ch.broker.subscribe(session, filter, options, packet.properties);
    if (refused) {
      granted.push(ch.dialect.subscribeFailure(RC.QUOTA_EXCEEDED)); // $exclusive filter held by another client
      continue;
    }
    granted.push(options.qos);
    // Retain Handling: 0 always, 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11];
    // shared subscriptions never get retained messages (§4.8.2).
    if (!shared && (options.retainHandling === 0 || (options.retainHandling === 1 && !existed))) retained.push([filter, options, existed]);
  }
  // Retained messages follow the SUBACK.
  const suback: Step[] = [{ send: { cmd: 'suback', messageId: packet.messageId, granted } }, { call: () => retained.forEach(([filter, options]) => ch.broker.deliverRetained(session, filter, options)) }];
  return afterStored(ch, ch.broker.confirmSubscriptions(session), suback);
}

/** SUBACK/UNSUBACK wait until the subscriptions are stored (and, scaled out, routed); so do later packets. */
function afterStored(ch: Channel, stored: Promise<void> | undefined, reply: Steps): Steps {
  if (!stored) return reply;
  return wait({ wait: stored, then: () => reply, failed: (err) => void ch.log.error({ err }, 'session persist failed'), hold: true });
}

/** UNSUBSCRIBE (§3.10): client.unsubscribe may rewrite the filters; UNSUBACK with 0x00 or 0x11 per filter (5.0). */
export function handleUnsubscribe(ch: Channel, packet: mp.IUnsubscribePacket): Steps {
  const session = ch.session!;
  // At least one filter [MQTT-3.10.3-2] (5.0: "an UNSUBSCRIBE packet with no Payload is a Protocol Error").
  if (packet.unsubscriptions.length === 0) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'UNSUBSCRIBE without topic filters');
  const hooks = ch.broker.hooks;
  const filters = hooks.has('client.unsubscribe') ? sameLength(ch, packet.unsubscriptions, hooks.unsubscribe(ch.client!, packet.unsubscriptions)) : packet.unsubscriptions;
  const props = packet.properties;
  const codes = filters.map((f) => (ch.broker.unsubscribe(session, f, props) ? RC.SUCCESS : RC.NO_SUBSCRIPTION_EXISTED));
  return afterStored(ch, ch.broker.confirmSubscriptions(session), { send: ch.dialect.unsuback(packet.messageId ?? 0, codes) });
}
