import { isUtf8 } from 'node:buffer';
import { dirname } from 'node:path';
import { ProtocolError } from '@tributary/common';
import { RC } from './reason-codes';

// mqtt-packet calls the `debug` package several times per packet; unless DEBUG asks for output,
// give it a no-op logger before it loads (measured: ~6% of broker CPU under QoS 1 load).
if (!process.env.DEBUG) {
  const debugPath = require.resolve('debug', { paths: [dirname(require.resolve('mqtt-packet'))] });
  if (!require.cache[debugPath]) {
    const noop = Object.assign(() => undefined, { enabled: false });
    const factory = Object.assign(() => noop, { enable: () => undefined, disable: () => '', enabled: () => false });
    require.cache[debugPath] = { id: debugPath, filename: debugPath, loaded: true, exports: factory } as unknown as NodeJS.Module;
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mqttPacket = require('mqtt-packet') as typeof import('mqtt-packet');
// The generator's number cache is 65,536 two-byte Buffers (~6 MB); hot packets have their own
// encoders (encode.ts), so the rest can allocate.
(mqttPacket.writeToStream as unknown as { cacheNumbers: boolean }).cacheNumbers = false;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ParserClass = require('mqtt-packet/parser') as new () => MqttParser;

export type Packet = import('mqtt-packet').Packet;

/** The part of mqtt-packet's parser we use. */
export interface MqttParser {
  parse(buf: Buffer): number;
  on(event: 'packet', cb: (p: Packet) => void): this;
  on(event: 'error', cb: (e: Error) => void): this;
  settings: { protocolVersion?: number };
  _list: { length: number; get(index: number): number; toString(enc: 'utf8', start: number, end: number): string; slice(start: number, end: number): Buffer };
  _pos: number;
  _parseNum(): number;
  packet: { length: number; cmd?: string };
}

/** What the checks below emit: a Malformed Packet (§4.13), closed with reason code 0x81. */
const malformed = (message: string): ProtocolError => new ProtocolError(RC.MALFORMED_PACKET, message);

const REPLACEMENT = '\uFFFD';
const NUL = '\u0000';

/**
 * mqtt-packet decodes strings with Buffer#toString, which silently replaces invalid UTF-8.
 * MQTT requires closing the connection instead [MQTT-1.5.4-1], and U+0000 is forbidden
 * [MQTT-1.5.4-2]; the check costs nothing unless a string contains U+FFFD or U+0000.
 */
function checkedParseString(this: MqttParser & { _emitError(e: Error): void }): string | null {
  const length = this._parseNum();
  const end = length + this._pos;
  if (length === -1 || end > this._list.length || end > this.packet.length) return null;
  const result = this._list.toString('utf8', this._pos, end);
  if (result.includes(REPLACEMENT) && !isUtf8(this._list.slice(this._pos, end))) {
    this._emitError(malformed('invalid UTF-8 string'));
    return null;
  }
  if (result.includes(NUL)) {
    this._emitError(malformed('U+0000 in a UTF-8 string'));
    return null;
  }
  this._pos += length;
  return result;
}

// mqtt-packet buffers input in `bl()`, a full Duplex stream (about 1 KB per connection); the
// plain BufferList underneath has the same methods and is all the parser uses.
const BufferList = require(require.resolve('bl/BufferList', { paths: [dirname(require.resolve('mqtt-packet'))] })) as new () => MqttParser['_list'];

function resetState(this: MqttParser & { error: Error | null; _stateCounter: number; packet: unknown }): void {
  this.packet = new PacketClass();
  this.error = null;
  this._list = new BufferList();
  this._stateCounter = 0;
}

const PacketClass = require(require.resolve('mqtt-packet/packet')) as new () => MqttParser['packet'];

type ParserInternals = MqttParser & {
  error: Error | null;
  _emitError(e: Error): void;
  _parseVarByteNum(): number | false;
  packet: { messageId?: number; qos?: number };
};
type SlicedList = MqttParser['_list'] & { shallowSlice(start: number, end: number): MqttParser['_list'] };
const baseProto = ParserClass.prototype as unknown as Record<string, (this: ParserInternals) => unknown>;
const parseProperties = baseProto._parseProperties!;
const parsePayload = baseProto._parsePayload!;
const parseByType = baseProto._parseByType as unknown as (this: ParserInternals, type: string) => unknown;

/**
 * One-byte properties a client sends whose only values are 0 and 1: Payload Format Indicator
 * (0x01, §3.3.2.3.2), Request Response Information (0x19, §3.1.2.11.7), Request Problem
 * Information (0x17, §3.1.2.11.6).
 */
const KEPT_AS_SENT = new Set([0x01, 0x17, 0x19]);

/**
 * mqtt-packet decodes every one-byte property to a boolean (`byte !== 0`), so a Payload Format
 * Indicator of 2 would be forwarded as 1, and a Request Problem Information of 2 read as 1. These
 * are kept as the byte that was sent (0 or 1; anything else the channel refuses as a Protocol
 * Error), and the Payload Format Indicator travels as that number [MQTT-3.3.2-4]. mqtt-packet
 * reads the property identifier with one `_parseByte()` just before the value.
 */
function checkedParseByType(this: ParserInternals & { _parseByte(): number }, type: string): unknown {
  if (type === 'byte' && KEPT_AS_SENT.has(this._list.get(this._pos - 1))) return this._parseByte();
  return parseByType.call(this, type);
}

/** A property value mqtt-packet could not read: null, undefined or -1, also inside user properties. */
function invalidValue(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === 'number') return !(v >= 0);
  if (typeof v !== 'object' || Buffer.isBuffer(v)) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (invalidValue(v[i])) return true;
    return false;
  }
  for (const k in v) if (invalidValue((v as Record<string, unknown>)[k])) return true;
  return false;
}

/**
 * mqtt-packet reads property values without checking them: a value cut short by the Property
 * Length or by the end of the packet comes back as null or -1, and such a packet reached the
 * broker (and failed when forwarded to subscribers). The properties must be exactly Property
 * Length bytes of valid values, or the packet is malformed (§2.2.2.1, §4.13). An absent Property
 * Length (allowed in DISCONNECT and AUTH) still parses as no properties.
 */
function checkedParseProperties(this: ParserInternals): unknown {
  const start = this._pos;
  const length = this._parseVarByteNum();
  const end = this._pos + (length || 0);
  this._pos = start;
  if (this.error) return false;
  const result = parseProperties.call(this);
  if (this.error || result === false || length === false) return result;
  if (this._pos !== end || end > this.packet.length || invalidValue(result)) {
    this._emitError(malformed('malformed properties'));
    return false;
  }
  return result;
}

/** Packets whose fields mqtt-packet reads in order, so that an overrun shows in the position. */
const SEQUENTIAL = new Set(['publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'pingreq']);

/**
 * mqtt-packet parses a packet's fields from its whole input buffer, so a packet shorter than its
 * fields was completed with the next packet's bytes: such a packet is malformed. The hot packets
 * are checked by position; the others (DISCONNECT and AUTH may omit fields, which mqtt-packet
 * then reads from the next packet) are parsed from their own Remaining Length only.
 * A packet identifier that is missing, or 0 where one is required [MQTT-2.3.1-1], makes the packet
 * malformed too (DUP on a QoS 0 PUBLISH is a Protocol Error, checked by the channel).
 */
function checkedParsePayload(this: ParserInternals): unknown {
  const all = this._list as SlicedList;
  const p = this.packet;
  let done: unknown;
  if (all.length > p.length && !SEQUENTIAL.has(p.cmd!)) {
    this._list = all.shallowSlice(0, p.length);
    try {
      done = parsePayload.call(this);
    } finally {
      this._list = all;
    }
  } else done = parsePayload.call(this);
  if (!done || this.error) return done;
  if (this._pos > p.length) {
    this._emitError(malformed('packet shorter than its fields'));
    return done;
  }
  const needsId = p.cmd === 'subscribe' || p.cmd === 'unsubscribe' || (p.cmd === 'publish' && (p.qos ?? 0) > 0);
  if (p.messageId === -1) this._emitError(malformed('packet identifier missing'));
  else if (needsId && p.messageId === 0) this._emitError(malformed('packet identifier 0'));
  return done;
}

class CheckedParser extends ParserClass {}
const proto = CheckedParser.prototype as unknown as Record<string, unknown>;
proto._parseString = checkedParseString;
proto._resetState = resetState;
proto._parseProperties = checkedParseProperties;
proto._parsePayload = checkedParsePayload;
proto._parseByType = checkedParseByType;

/** A new incremental MQTT parser that validates UTF-8 strings. */
export function createParser(): MqttParser {
  const p = new CheckedParser();
  (p as unknown as { parser(opts: object): MqttParser }).parser({});
  return p;
}

export const generatePacket = mqttPacket.generate;
