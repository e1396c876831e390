import type { QoS, SubscriptionOptions } from '@tributary/mqtt';

/** Ownership fields of a session record (scaled out); single-node records have none of them. */
export interface SessionOwnership {
  /** Gateway (node name) owning the session while a client is connected; null when offline. */
  owner?: string | null;
  /** Incarnation of the owning gateway process. */
  incarnation?: string;
  /** Fencing epoch: incremented by every claim; a record with a lower epoch is stale. */
  epoch?: number;
  /** When the owner claimed the session (ms). */
  claimedAt?: number;
  /** Bumped by the owner when it needs the router to confirm the record (claim, subscribe). */
  ack?: number;
  /** The will, published by the router if the owner's lease lapses: Avro message (base64) and delay. */
  will?: { message: string; delaySeconds: number };
  /** Offline with a will still waiting for its delay: the router publishes it then (ms since the epoch). */
  willAt?: number;
}

/**
 * The value of the sessions table (key: client id): subscriptions, expiry and delivery positions,
 * not copies of messages; scaled out also its ownership (owner gateway, fencing epoch, will).
 */
export interface SessionRecord extends SessionOwnership {
  clientId: string;
  protocolVersion: number;
  /** Seconds; 0xFFFFFFFF never expires. */
  expiryInterval: number;
  subscriptions: [string, SubscriptionOptions][];
  /** Messages-topic offset from which matching messages have not all been delivered. */
  cursor: number;
  /** In-flight deliveries: [offset, packetId, qos, phase]. */
  inflight: [number, number, QoS, 1 | 2][];
  /** Incoming QoS 2 packet ids that were PUBREC'd and await PUBREL. */
  awaitingRel: number[];
  /** Null while a connection is attached. */
  disconnectedAt: number | null;
}
