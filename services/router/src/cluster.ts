import { BackboneError } from '@tributary/common';
import type { SessionOwnership } from '@tributary/records';
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
/** Compacted table of retained messages, keyed by MQTT topic (Avro message; tombstone = cleared). */
export const RETAINED_TABLE = 'retained';

export type { GatewayLease, SessionOwnership } from '@tributary/records';

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

/** Header of a downlink record holding a bundle of deliveries (value: encodeBundle). */
export const BUNDLE_HEADER = 'tributary-bundle';

/**
 * One delivery in a bundle: the messages-topic offset and record value, the `$share` picks
 * (formatSharedPicks), and the publisher's username when its record carried one (publisher
 * headers, written while a rule wants it: from_username of the delivery events).
 */
export interface BundledDelivery {
  offset: number;
  value: Buffer;
  shared: string | undefined;
  username?: string | undefined;
}

/**
 * The router sends a gateway its deliveries of one batch as one downlink record (split past
 * BUNDLE_MAX_BYTES), not one record per message: Kafka's per-record cost (encoding, headers,
 * decoding on the gateway) is paid once per batch. Entry: offset (float64 BE), shared picks
 * (u32 length + UTF-8, 0 = none), in version 2 the publisher's username (u32 length + UTF-8,
 * 0 = none), value (u32 length + bytes); the BUNDLE_HEADER's value is the version, and the
 * router writes version 1 unless an entry has a username, so gateways of the release before
 * read what they always read. The records of one append still form one Kafka record batch; the
 * backbone creates topics with max.message.bytes of 8 MiB, above a router batch (at most 2,000
 * messages) of the usual sizes.
 */
export const BUNDLE_MAX_BYTES = 256 * 1024;

export function bundleSize(d: { value: Buffer; shared?: string | undefined; username?: string | undefined }): number {
  return 20 + d.value.length + (d.shared === undefined ? 0 : Buffer.byteLength(d.shared)) + (d.username === undefined ? 0 : Buffer.byteLength(d.username));
}

/** The bundle version `entries` need: 2 when one carries a username, else 1. */
export function bundleVersion(entries: readonly BundledDelivery[]): 1 | 2 {
  for (const e of entries) if (e.username !== undefined) return 2;
  return 1;
}

export function encodeBundle(entries: readonly BundledDelivery[], version: 1 | 2 = bundleVersion(entries)): Buffer {
  let size = 0;
  for (const e of entries) size += bundleSize(e);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const e of entries) {
    out.writeDoubleBE(e.offset, at);
    at = writeString(out, at + 8, e.shared);
    if (version === 2) at = writeString(out, at, e.username);
    out.writeUInt32BE(e.value.length, at);
    e.value.copy(out, at + 4);
    at += 4 + e.value.length;
  }
  return out.subarray(0, at);
}

/** u32 length + UTF-8 (0: undefined) at `at`; the position after it. */
function writeString(out: Buffer, at: number, s: string | undefined): number {
  const length = s === undefined ? 0 : out.write(s, at + 4, 'utf8');
  out.writeUInt32BE(length, at);
  return at + 4 + length;
}

/** Calls `each` per entry (values are views into `buf`); throws on a truncated bundle or an unknown version. */
export function decodeBundle(buf: Buffer, each: (d: BundledDelivery) => void, version = '1'): void {
  if (version !== '1' && version !== '2') throw new BackboneError('RECORD_INVALID', `bundle version ${version} unknown`);
  let at = 0;
  const string = (): string | undefined => {
    if (at + 4 > buf.length) throw new BackboneError('RECORD_INVALID', 'truncated bundle');
    const length = buf.readUInt32BE(at);
    if (at + 4 + length > buf.length) throw new BackboneError('RECORD_INVALID', 'truncated bundle');
    const s = length === 0 ? undefined : buf.toString('utf8', at + 4, at + 4 + length);
    at += 4 + length;
    return s;
  };
  while (at < buf.length) {
    if (at + 8 > buf.length) throw new BackboneError('RECORD_INVALID', 'truncated bundle');
    const offset = buf.readDoubleBE(at);
    at += 8;
    const shared = string();
    const username = version === '2' ? string() : undefined;
    if (at + 4 > buf.length) throw new BackboneError('RECORD_INVALID', 'truncated bundle');
    const length = buf.readUInt32BE(at);
    if (at + 4 + length > buf.length) throw new BackboneError('RECORD_INVALID', 'truncated bundle');
    each({ offset, value: buf.subarray(at + 4, at + 4 + length), shared, username });
    at += 4 + length;
  }
}
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
