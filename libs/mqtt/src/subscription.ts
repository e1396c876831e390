import type { QoS } from './message';

/** The options of one subscription (MQTT 5.0 §3.8.3.1; 3.1.1 has only the QoS). */
export interface SubscriptionOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5.0 Subscription Identifier. */
  subscriptionId?: number;
}
