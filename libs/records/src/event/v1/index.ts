import * as avro from 'avsc';
import { readFileSync } from 'node:fs';
import { readAvro, RecordError, schemaFile } from '../../codec';
import type { EventColumns, EventRecord, EventValue } from '../record';

/** io.tributary.v1.Event (schemas/event/v1.avsc). */
export const EVENT_V1 = 'io.tributary.v1.Event';

// Wrapped unions: the column values' union has both long and double, which an unwrapped union cannot tell apart.
export const eventV1Type = avro.Type.forSchema(JSON.parse(readFileSync(schemaFile('event', 1), 'utf8')) as avro.Schema, { wrapUnions: true });

/** A column value in the wrapped-union form of the Value record. */
type AvroBranch = null | { boolean: boolean } | { long: number } | { double: number } | { string: string } | { bytes: Buffer } | { array: AvroValue[] } | { map: Record<string, AvroValue> };
interface AvroValue {
  value: AvroBranch;
}

interface AvroEvent {
  event: string;
  timestamp: number;
  node: string;
  clientid: { string: string } | null;
  username: { string: string } | null;
  columns: Record<string, AvroValue>;
}

function toAvro(v: EventValue, path: string): AvroValue {
  if (v === null || v === undefined) return { value: null };
  switch (typeof v) {
    case 'boolean':
      return { value: { boolean: v } };
    case 'number':
      // -0 is a double: a long would read back as 0.
      return { value: Number.isSafeInteger(v) && !Object.is(v, -0) ? { long: v } : { double: v } };
    case 'string':
      return { value: { string: v } };
    default:
      if (Buffer.isBuffer(v)) return { value: { bytes: v } };
      if (Array.isArray(v)) return { value: { array: v.map((x, i) => toAvro(x, `${path}[${i}]`)) } };
      if (typeof v === 'object') return { value: { map: mapToAvro(v, path) } };
      throw new RecordError(`event column ${path}: a ${typeof v} is not a column value`);
  }
}

function mapToAvro(m: EventColumns, path: string): Record<string, AvroValue> {
  const out: Record<string, AvroValue> = {};
  for (const k of Object.keys(m)) {
    const v = m[k];
    if (v !== undefined) out[k] = toAvro(v, path ? `${path}.${k}` : k);
  }
  return out;
}

function fromAvro(a: AvroValue): EventValue {
  const b = a.value;
  if (b === null) return null;
  if ('boolean' in b) return b.boolean;
  if ('long' in b) return b.long;
  if ('double' in b) return b.double;
  if ('string' in b) return b.string;
  if ('bytes' in b) return b.bytes;
  if ('array' in b) return b.array.map(fromAvro);
  return mapFromAvro(b.map);
}

function mapFromAvro(m: Record<string, AvroValue>): EventColumns {
  const out: EventColumns = {};
  for (const k of Object.keys(m)) out[k] = fromAvro(m[k]!);
  return out;
}

export function encodeEventV1(e: EventRecord): Buffer {
  const a: AvroEvent = {
    event: e.event,
    timestamp: e.timestamp,
    node: e.node,
    clientid: e.clientid === undefined ? null : { string: e.clientid },
    username: e.username === undefined ? null : { string: e.username },
    columns: mapToAvro(e.columns, ''),
  };
  return eventV1Type.toBuffer(a);
}

export function decodeEventV1(body: Buffer): EventRecord {
  const a = readAvro<AvroEvent>(eventV1Type, body);
  return { event: a.event, timestamp: a.timestamp, node: a.node, clientid: a.clientid?.string, username: a.username?.string, columns: mapFromAvro(a.columns) };
}
