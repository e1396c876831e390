import { avroType, readAvro } from '../../codec';
import type { BannedAs, BannedRecord } from '../record';

/** io.tributary.v1.Banned (schemas/banned/v1.avsc). */
export const BANNED_V1 = 'io.tributary.v1.Banned';
export const bannedV1Type = avroType('banned', 1);

interface AvroBanned {
  as: BannedAs;
  who: string;
  by: string;
  reason: string;
  at: number;
  until: number | null;
}

export function encodeBannedV1(b: BannedRecord): Buffer {
  const a: AvroBanned = { as: b.as, who: b.who, by: b.by, reason: b.reason, at: b.at, until: b.until === 'infinity' ? null : b.until };
  return bannedV1Type.toBuffer(a);
}

export function decodeBannedV1(body: Buffer): BannedRecord {
  const a = readAvro<AvroBanned>(bannedV1Type, body);
  return { as: a.as, who: a.who, by: a.by, reason: a.reason, at: a.at, until: a.until ?? 'infinity' };
}
