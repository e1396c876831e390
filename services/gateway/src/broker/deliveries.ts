import type { Message, QoS } from '@tributary/mqtt';
import type { Route } from '@tributary/router';
import type { Delivery } from '../session/types';

/**
 * How `msg` reaches one subscriber: the highest QoS of its matching subscriptions, capped at
 * the message's [MQTT-3.8.4-8]; No Local [MQTT-3.8.3-3]; Retain As Published [MQTT-3.3.1-12];
 * every matching Subscription Identifier, each once [MQTT-3.3.4-3].
 */
export function deliveryFor(route: Route, msg: Message): Delivery | undefined {
  let qos = -1;
  let retain = false;
  let ids: number[] | undefined;
  for (const sub of route.subscriptions) {
    if (sub.noLocal && route.clientId === msg.from) continue;
    if (sub.qos > qos) qos = sub.qos;
    if (sub.retainAsPublished) retain = true;
    // Overlapping subscriptions may carry the same identifier: each is sent once [MQTT-3.3.4-4].
    const id = sub.subscriptionId;
    if (id !== undefined && !(ids ??= []).includes(id)) ids.push(id);
  }
  // Undefined: every matching subscription is No Local and the subscriber published it.
  if (qos < 0) return undefined;
  return { msg, qos: Math.min(qos, msg.qos) as QoS, retain: retain && msg.retain, subscriptionIds: ids };
}
