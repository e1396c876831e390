import type { QoS } from '@tributary/mqtt';
import { avroType, readAvro } from '../../codec';
import type { SessionRecord } from '../record';

/** io.tributary.v2.Session (schemas/session/v2.avsc): the first Avro version of the session record. */
export const SESSION_V2 = 'io.tributary.v2.Session';
export const sessionV2Type = avroType('session', 2);

/** The Avro form of a session record: optional fields are null, tuples are records. */
export interface SessionAvro {
  clientId: string;
  protocolVersion: number;
  expiryInterval: number;
  subscriptions: { filter: string; qos: number; noLocal: boolean; retainAsPublished: boolean; retainHandling: number; subscriptionId: number | null }[];
  cursor: number;
  inflight: { offset: number; packetId: number; qos: number; phase: number }[];
  awaitingRel: number[];
  disconnectedAt: number | null;
  owner: string | null;
  incarnation: string | null;
  epoch: number | null;
  claimedAt: number | null;
  ack: number | null;
  will: { message: Buffer; delaySeconds: number } | null;
  willAt: number | null;
}

export function toSessionAvro(s: SessionRecord): SessionAvro {
  return {
    clientId: s.clientId,
    protocolVersion: s.protocolVersion,
    expiryInterval: s.expiryInterval,
    subscriptions: s.subscriptions.map(([filter, o]) => ({ filter, qos: o.qos, noLocal: o.noLocal, retainAsPublished: o.retainAsPublished, retainHandling: o.retainHandling, subscriptionId: o.subscriptionId ?? null })),
    cursor: s.cursor,
    inflight: s.inflight.map(([offset, packetId, qos, phase]) => ({ offset, packetId, qos, phase })),
    awaitingRel: s.awaitingRel,
    disconnectedAt: s.disconnectedAt,
    owner: s.owner ?? null,
    incarnation: s.incarnation ?? null,
    epoch: s.epoch ?? null,
    claimedAt: s.claimedAt ?? null,
    ack: s.ack ?? null,
    will: s.will ? { message: Buffer.from(s.will.message, 'base64'), delaySeconds: s.will.delaySeconds } : null,
    willAt: s.willAt ?? null,
  };
}

/**
 * The record in memory. Optional fields absent in memory are null in Avro; `owner` is the one
 * whose null means something (offline): it is kept on records that have an epoch (every
 * scaled-out writer sets both) and absent on single-node records, as their JSON had it.
 * Ranges are checked by the codec, after this.
 */
export function fromSessionAvro(a: SessionAvro): SessionRecord {
  const s: SessionRecord = {
    clientId: a.clientId,
    protocolVersion: a.protocolVersion,
    expiryInterval: a.expiryInterval,
    subscriptions: a.subscriptions.map((o) => {
      const options = { qos: o.qos as QoS, noLocal: o.noLocal, retainAsPublished: o.retainAsPublished, retainHandling: o.retainHandling as 0 | 1 | 2 };
      return [o.filter, o.subscriptionId === null ? options : { ...options, subscriptionId: o.subscriptionId }];
    }),
    cursor: a.cursor,
    inflight: a.inflight.map((e) => [e.offset, e.packetId, e.qos as QoS, e.phase as 1 | 2]),
    awaitingRel: a.awaitingRel,
    disconnectedAt: a.disconnectedAt,
  };
  if (a.owner !== null || a.epoch !== null) s.owner = a.owner;
  if (a.incarnation !== null) s.incarnation = a.incarnation;
  if (a.epoch !== null) s.epoch = a.epoch;
  if (a.claimedAt !== null) s.claimedAt = a.claimedAt;
  if (a.ack !== null) s.ack = a.ack;
  if (a.will !== null) s.will = { message: a.will.message.toString('base64'), delaySeconds: a.will.delaySeconds };
  if (a.willAt !== null) s.willAt = a.willAt;
  return s;
}

export function encodeSessionV2(s: SessionRecord): Buffer {
  return sessionV2Type.toBuffer(toSessionAvro(s));
}

export function decodeSessionV2(body: Buffer): SessionRecord {
  return fromSessionAvro(readAvro<SessionAvro>(sessionV2Type, body));
}
