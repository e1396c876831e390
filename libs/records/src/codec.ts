import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';
import { BackboneError } from '@tributary/common';

/**
 * Table values carry no headers, so a framed value says its own version: RECORD_MAGIC, the
 * version byte, then the Avro body. The magic byte starts neither JSON text (`{`, the version 1
 * records) nor a Confluent wire-format value (0x00), so a reader never mistakes one for another.
 */
export const RECORD_MAGIC = 0xfb;

/** A record that cannot be decoded: malformed, of an unknown version, or outside what its schema allows (RECORD_INVALID). */
export class RecordError extends BackboneError {
  constructor(message: string) {
    super('RECORD_INVALID', message);
  }
}

/** The codec of one record type: encodes the newest version, decodes (and upgrades) every version. */
export interface RecordCodec<T> {
  /** Avro full name of the newest schema, e.g. io.tributary.v2.Session. */
  readonly schema: string;
  readonly version: number;
  encode(value: T): Buffer;
  /** Throws RecordError. `key`, when given, is the table key the record was stored under. */
  decode(value: Buffer, key?: string): T;
}

/** One version's reader: the record's body (after the frame) upgraded to the current shape. */
export type VersionDecoder<T> = (body: Buffer) => T;

/** The published Avro schema of a record type and version (libs/records/schemas/<record>/v<N>.avsc). */
export function schemaFile(record: string, version: number): string {
  return join(__dirname, '..', '..', 'schemas', record, `v${version}.avsc`);
}

export function avroType(record: string, version: number): avro.Type {
  return avro.Type.forSchema(JSON.parse(readFileSync(schemaFile(record, version), 'utf8')) as avro.Schema);
}

/** Frames an Avro body as version `version`. */
export function framed(version: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 2);
  out[0] = RECORD_MAGIC;
  out[1] = version;
  body.copy(out, 2);
  return out;
}

/** Avro decoding that fails with RecordError (also on trailing bytes, which avsc rejects). */
export function readAvro<A>(type: avro.Type, body: Buffer): A {
  try {
    return type.fromBuffer(body) as A;
  } catch (err) {
    throw new RecordError(`not a ${type.name ?? 'record'}: ${(err as Error).message}`);
  }
}

/**
 * The Avro form `value` must have, checked against the type; the error names the first invalid
 * field (used for records that do not come as Avro bytes, e.g. the JSON of version 1).
 */
export function checkAvro(type: avro.Type, value: unknown): void {
  const bad: string[] = [];
  if (!type.isValid(value, { errorHook: (path) => bad.push(path.join('.') || '(record)') })) throw new RecordError(`invalid ${type.name ?? 'record'}: field ${bad[0]}`);
}

/**
 * A codec over the versions of one record type: `decoders[v]` reads framed version v; `legacyJson`
 * reads the unframed JSON that came before framing (version 1). `check` holds what a schema
 * cannot express (ranges, the key), applied to every decoded record whatever its version.
 */
export function versionedCodec<T>(spec: {
  schema: string;
  version: number;
  encode: (value: T) => Buffer;
  decoders: Readonly<Record<number, VersionDecoder<T>>>;
  legacyJson: (json: unknown) => T;
  check: (value: T, key: string | undefined) => void;
}): RecordCodec<T> {
  return {
    schema: spec.schema,
    version: spec.version,
    encode: (value) => framed(spec.version, spec.encode(value)),
    decode(value, key) {
      const record = value[0] === 0x7b ? spec.legacyJson(parseJson(value)) : fromFrame(spec, value);
      spec.check(record, key);
      return record;
    },
  };
}

function fromFrame<T>(spec: { schema: string; decoders: Readonly<Record<number, VersionDecoder<T>>> }, value: Buffer): T {
  if (value.length < 2 || value[0] !== RECORD_MAGIC) throw new RecordError(`not a ${spec.schema} record (first byte 0x${(value[0] ?? 0).toString(16)})`);
  const decoder = spec.decoders[value[1]!];
  if (!decoder) throw new RecordError(`${spec.schema}: unknown version ${value[1]} (written by a newer Tributary?)`);
  return decoder(value.subarray(2));
}

function parseJson(value: Buffer): unknown {
  try {
    return JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new RecordError(`malformed JSON record: ${(err as Error).message}`);
  }
}

/** Throws RecordError unless `n` is an integer in [min, max]. */
export function inRange(what: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new RecordError(`${what} ${n} outside ${min}..${max}`);
}
