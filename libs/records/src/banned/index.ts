import { inRange, RecordCodec, RecordError, versionedCodec } from '../codec';
import { bannedKey, BannedRecord } from './record';
import { BANNED_V1, decodeBannedV1, encodeBannedV1 } from './v1';

export * from './record';

function checkBanned(b: BannedRecord, key: string | undefined): void {
  if (b.who.length === 0) throw new RecordError('banned: empty who');
  inRange('banned: at', b.at, 0, Number.MAX_SAFE_INTEGER);
  if (b.until !== 'infinity') inRange('banned: until', b.until, 0, Number.MAX_SAFE_INTEGER);
  if (key !== undefined && key !== bannedKey(b.as, b.who)) throw new RecordError(`banned: key "${key}" is not ${bannedKey(b.as, b.who)}`);
}

/** The banned table's records: io.tributary.v1.Banned (there was no JSON version). */
export const bannedCodec: RecordCodec<BannedRecord> = versionedCodec<BannedRecord>({
  schema: BANNED_V1,
  version: 1,
  encode: encodeBannedV1,
  decoders: { 1: decodeBannedV1 },
  legacyJson: () => {
    throw new RecordError('banned: a JSON value (this record was never JSON)');
  },
  check: checkBanned,
});
