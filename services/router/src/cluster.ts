import type { SubscriptionOptions } from './router';

/**
 * The records gateways and the router service exchange over the backbone when they run as
 * separate processes (docs/architecture.md, "Scaled out"). Kept in one place so both sides
 * read and write the same shapes.
 */

/** Compacted table of gateway leases, keyed by gateway name (node.name). */
export const GATEWAYS_TABLE = 'gateways';
/** Compacted table of sessions, keyed by client id. */
export const SESSIONS_TABLE = 'sessions';

/** A gateway's lease: renewed while it runs; a lapsed or replaced lease orphans its sessions. */
export interface GatewayLease {
  /** Random per process start: a restarted gateway does not own its predecessor's sessions. */
  incarnation: string;
  startedAt: number;
  /** Milliseconds since the epoch after which the gateway counts as dead. */
  until: number;
}

/** Ownership fields of a session record (scaled out); the gateway's PersistedSession has them too. */
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

/** What the router reads from a session record (the gateway writes the full PersistedSession). */
export interface RoutedSession extends SessionOwnership {
  clientId: string;
  /** Seconds; 0xFFFFFFFF never expires. */
  expiryInterval: number;
  subscriptions: [string, SubscriptionOptions][];
  disconnectedAt: number | null;
}

/** Downlink (router → gateway) topic of one gateway. Kafka topic names allow [a-zA-Z0-9._-]. */
export function downlinkTopic(gateway: string): string {
  return `downlink.${gateway.replace(/[^a-zA-Z0-9._-]/g, '_')}`;
}

/** Header of a delivery: the message's offset in the messages topic. */
export const OFFSET_HEADER = 'tributary-offset';
/** Header of a delivery: `<share key>\u0000<client id>` pairs, one per line, for shared subscriptions. */
export const SHARED_HEADER = 'tributary-shared';
/** Header of a route acknowledgement: `<epoch>:<ack>:<from offset>`; the key is the client id. */
export const ACK_HEADER = 'tributary-route-ack';

export interface RouteAck {
  epoch: number;
  ack: number;
  /** Every message from this offset on is routed with the acknowledged record. */
  from: number;
}

export function formatAck(a: RouteAck): string {
  return `${a.epoch}:${a.ack}:${a.from}`;
}

export function parseAck(s: string): RouteAck | undefined {
  const [epoch, ack, from] = s.split(':').map(Number);
  if (!Number.isInteger(epoch) || !Number.isInteger(ack) || !Number.isInteger(from)) return undefined;
  return { epoch: epoch!, ack: ack!, from: from! };
}

export function formatSharedPicks(picks: ReadonlyArray<readonly [string, string]>): string {
  return picks.map(([key, client]) => `${key}\u0000${client}`).join('\n');
}

export function parseSharedPicks(header: string): [string, string][] {
  return header.split('\n').map((line) => {
    const i = line.indexOf('\u0000');
    return [line.slice(0, i), line.slice(i + 1)] as [string, string];
  });
}

/** The fencing epoch of a record (0 for records written before there were epochs). */
export function epochOf(s: { epoch?: number } | undefined): number {
  return s?.epoch ?? 0;
}

/** Whether two records belong to one claim (its owner's later writes, including the offline one). */
export function sameClaim(a: RoutedSession, b: RoutedSession): boolean {
  return epochOf(a) === epochOf(b) && a.incarnation === b.incarnation && a.claimedAt === b.claimedAt;
}

/**
 * Whether record `a` of a client replaces `b`, the same rule in every process: a higher epoch
 * wins; a later write of the same claim wins; at equal epochs an owned record beats an offline
 * one (the router's release loses to a concurrent claim), then the later claim, then the
 * greater owner name. A record that does not supersede the current one is stale.
 */
export function supersedes(a: RoutedSession, b: RoutedSession | undefined): boolean {
  if (!b) return true;
  const ea = epochOf(a);
  const eb = epochOf(b);
  if (ea !== eb) return ea > eb;
  if (sameClaim(a, b)) return true;
  if (!a.owner !== !b.owner) return !!a.owner;
  const ca = a.claimedAt ?? 0;
  const cb = b.claimedAt ?? 0;
  return ca !== cb ? ca > cb : String(a.owner) > String(b.owner);
}
