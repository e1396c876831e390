import { inRange, RecordCodec, RecordError, versionedCodec } from '../codec';
import type { SessionRecord } from './record';
import { decodeSessionV1 } from './v1';
import { decodeSessionV2, encodeSessionV2, SESSION_V2 } from './v2';

export * from './record';

const NEVER_EXPIRES = 0xffffffff;
const MAX_SUBSCRIPTION_ID = 268_435_455;

/** What the session schema cannot say; the MQTT 5.0 ranges of each field. */
function checkSession(s: SessionRecord, key: string | undefined): void {
  if (key !== undefined && s.clientId !== key) throw new RecordError(`session of ${JSON.stringify(s.clientId)} stored under key ${JSON.stringify(key)}`);
  if (s.protocolVersion !== 3 && s.protocolVersion !== 4 && s.protocolVersion !== 5) throw new RecordError(`session: protocolVersion ${s.protocolVersion}`);
  inRange('session: expiryInterval', s.expiryInterval, 0, NEVER_EXPIRES);
  inRange('session: cursor', s.cursor, 0, Number.MAX_SAFE_INTEGER);
  for (const [filter, o] of s.subscriptions) {
    if (filter.length === 0) throw new RecordError('session: empty subscription filter');
    inRange(`session: qos of ${filter}`, o.qos, 0, 2);
    inRange(`session: retainHandling of ${filter}`, o.retainHandling, 0, 2);
    if (o.subscriptionId !== undefined) inRange(`session: subscriptionId of ${filter}`, o.subscriptionId, 1, MAX_SUBSCRIPTION_ID);
  }
  for (const [offset, packetId, qos, phase] of s.inflight) {
    inRange('session: in-flight offset', offset, -1, Number.MAX_SAFE_INTEGER);
    inRange('session: in-flight packet id', packetId, 1, 65_535);
    inRange('session: in-flight qos', qos, 1, 2);
    inRange('session: in-flight phase', phase, 1, 2);
  }
  for (const id of s.awaitingRel) inRange('session: awaitingRel packet id', id, 1, 65_535);
  if (s.epoch !== undefined) inRange('session: epoch', s.epoch, 0, Number.MAX_SAFE_INTEGER);
}

/** The sessions table's records: writes io.tributary.v2.Session; reads v2 and the JSON v1. */
export const sessionCodec: RecordCodec<SessionRecord> = versionedCodec<SessionRecord>({
  schema: SESSION_V2,
  version: 2,
  encode: encodeSessionV2,
  decoders: { 2: decodeSessionV2 },
  legacyJson: decodeSessionV1,
  check: checkSession,
});
