import { checkAvro, RecordError } from '../../codec';
import type { SessionRecord } from '../record';
import { fromSessionAvro, sessionV2Type, toSessionAvro } from '../v2';

/**
 * Version 1: the JSON the gateway wrote before records were framed (`{"v":1,...}`, see
 * test/fixtures/session.v1.json): the in-memory record as JSON, which has the fields of version
 * 2. Upgraded through the version 2 Avro form, checked against that schema, so a v1 record is
 * held to the v2 types; whatever is not even shaped like a record fails as a RecordError.
 */
export function decodeSessionV1(json: unknown): SessionRecord {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new RecordError('session v1: not a JSON object');
  const { v, ...fields } = json as Record<string, unknown>;
  if (v !== 1) throw new RecordError(`session v1: field v is ${JSON.stringify(v)}, expected 1`);
  const will = fields.will as { message?: unknown } | null | undefined;
  if (will && typeof will.message !== 'string') throw new RecordError('session v1: will.message is not a base64 string');
  let form: ReturnType<typeof toSessionAvro>;
  try {
    form = toSessionAvro(fields as unknown as SessionRecord);
  } catch (err) {
    throw new RecordError(`session v1: not shaped like a session (${(err as Error).message})`);
  }
  checkAvro(sessionV2Type, form);
  const s = fromSessionAvro(form);
  // v1 wrote `owner: null` where it meant offline; an absent owner stays absent.
  if (fields.owner === undefined) delete s.owner;
  return s;
}
