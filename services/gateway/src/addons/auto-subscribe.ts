import type { Logger } from '@tributary/common';
import type { AutoSubscribeTopic } from '../config';
import type { HookRegistry } from '@tributary/hooks';
import { checkTopicFilter, QoS } from '@tributary/mqtt';
import type { SubscriptionOptions } from '@tributary/router';
import type { Session } from '../session/session';
import { fillPlaceholders } from './rewrite';

/** What auto-subscribe needs from the broker. */
export interface SubscriptionTarget {
  session(clientId: string): Session | undefined;
  subscribe(session: Session, filter: string, options: SubscriptionOptions): { existed: boolean; refused?: boolean };
  deliverRetained(session: Session, filter: string, options: SubscriptionOptions): void;
  confirmSubscriptions(session: Session): Promise<void> | undefined;
}

/**
 * EMQX auto-subscribe on client.connected: the configured topics, with ${clientid}/${username}
 * filled in, right after CONNACK. Scaled out, the router learns them like any other subscription.
 */
export function registerAutoSubscribe(hooks: HookRegistry, topics: readonly AutoSubscribeTopic[], maxLevels: number, broker: SubscriptionTarget, log: Logger): void {
  if (topics.length === 0) return;
  hooks.add('client.connected', { name: 'auto_subscribe', priority: 'auto_subscribe' }, (c) => {
    const session = broker.session(c.clientId);
    if (!session) return;
    let added = false;
    for (const t of topics) {
      // A client id or user name of "#" or "+" must not turn c/${clientid} into a wildcard over other clients' topics.
      const filled = (t.topic.includes('${clientid}') ? c.clientId : '') + (t.topic.includes('${username}') ? (c.username ?? '') : '');
      if (/[+#]/.test(filled)) {
        log.warn({ topic: t.topic, clientId: c.clientId }, 'auto_subscribe: client id or user name contains a wildcard; skipped');
        continue;
      }
      const filter = fillPlaceholders(t.topic, c.clientId, c.username);
      if (checkTopicFilter(filter, maxLevels)) {
        log.warn({ filter, clientId: c.clientId }, 'auto_subscribe topic is not a valid filter; skipped');
        continue;
      }
      const options: SubscriptionOptions = {
        qos: Math.min(2, Math.max(0, t.qos ?? 0)) as QoS,
        noLocal: t.nl === 1,
        retainAsPublished: t.rap === 1,
        retainHandling: Math.min(2, Math.max(0, t.rh ?? 0)) as 0 | 1 | 2,
      };
      const { existed, refused } = broker.subscribe(session, filter, options);
      added ||= !refused;
      if (!refused && (options.retainHandling === 0 || (options.retainHandling === 1 && !existed))) broker.deliverRetained(session, filter, options);
    }
    if (added) void broker.confirmSubscriptions(session);
  });
}
