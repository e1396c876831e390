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
  // mqtt-packet leaves the position of the packet that failed, and reads the next one's length from there.
  this._pos = 0;
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

function createCheckedParser(): MqttParser {
  const p = new CheckedParser();
  (p as unknown as { parser(opts: object): MqttParser }).parser({});
  return p;
}

/** An incremental MQTT parser: bytes in, packets out, in order; see FramingParser. */
export interface PacketParser {
  /** Parses what `buf` completes; returns the bytes kept for an incomplete packet. */
  parse(buf: Buffer): number;
  on(event: 'packet', cb: (p: Packet) => void): this;
  on(event: 'error', cb: (e: Error) => void): this;
  /** The protocol version PUBLISH properties are read for (5: they are); set once CONNECT is known. */
  settings: { protocolVersion?: number };
  /**
   * Stops after the packet being handled: the rest of its chunk (and what parse() gets meanwhile)
   * waits unparsed, as bytes, until resume(). Paused while a packet handler runs, the packets
   * after it are not even decoded: a paused publisher holds its unread bytes, not hundreds of packets.
   */
  pause(): void;
  /** Parses what waited since pause() (it may pause again); returns what parse() returns. */
  resume(): number;
  readonly paused: boolean;
  /** The bytes waiting for resume(). */
  readonly unparsedBytes: number;
}

/** What the fast path produces: the fields (and hidden class) of mqtt-packet's PUBLISH packet. */
class PublishPacket {
  readonly cmd = 'publish';
  constructor(
    readonly retain: boolean,
    readonly qos: 0 | 1 | 2,
    readonly dup: boolean,
    readonly length: number,
    readonly topic: string,
    readonly payload: Buffer,
    readonly messageId: number | undefined,
  ) {}
}

/** What the fast path produces for PUBACK, PUBREC, PUBREL and PUBCOMP: mqtt-packet's fields. */
class AckPacket {
  readonly retain = false;
  readonly dup = false;
  readonly topic = null;
  readonly payload = null;
  constructor(
    readonly cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp',
    readonly qos: 0 | 1,
    readonly length: number,
    readonly messageId: number,
    /** 5.0: 0 (Success) when the Reason Code is omitted; 3.x: absent, as mqtt-packet leaves it. */
    readonly reasonCode: number | undefined,
  ) {}
}

/** The canonical first byte of each acknowledgement (its required flags: PUBREL's are 0010). */
const ACKS: Record<number, AckPacket['cmd']> = { 0x40: 'puback', 0x50: 'pubrec', 0x62: 'pubrel', 0x70: 'pubcomp' };

const NO_PACKET = (): void => undefined;

/**
 * Splits the byte stream into whole packets itself and decodes the common PUBLISH (ASCII topic,
 * no v5 properties, a valid packet identifier) and the acknowledgements that carry only a packet
 * identifier (a subscriber's PUBACKs: one per message delivered) directly from the socket's chunk, without
 * mqtt-packet's buffer list and state machine (measured: mqtt-packet was a fifth of the broker's
 * CPU under a QoS 0 flood). Every other packet, and any PUBLISH the fast path does not take
 * (properties, non-ASCII topic, anything it would have to refuse), goes whole to the checked
 * mqtt-packet parser above, so refusals and their messages are that parser's. After an error the
 * rest of the chunk is discarded, as mqtt-packet does.
 */
class FramingParser implements PacketParser {
  private readonly checked = createCheckedParser();
  private onPacket: (p: Packet) => void = NO_PACKET;
  private failed = false;
  /** The incomplete packet's bytes so far. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The held packet's whole size once its fixed header is complete, else -1. */
  private heldTotal = -1;
  paused = false;
  /** Bytes not parsed yet because of pause(). */
  private unparsed: Buffer | undefined;

  constructor() {
    this.checked.on('packet', (p) => this.onPacket(p));
    this.checked.on('error', () => (this.failed = true));
  }

  get settings(): { protocolVersion?: number } {
    return this.checked.settings;
  }

  set settings(s: { protocolVersion?: number }) {
    this.checked.settings = s;
  }

  on(event: 'packet' | 'error', cb: ((p: Packet) => void) | ((e: Error) => void)): this {
    if (event === 'packet') this.onPacket = cb as (p: Packet) => void;
    else this.checked.on('error', cb as (e: Error) => void);
    return this;
  }

  pause(): void {
    this.paused = true;
  }

  get unparsedBytes(): number {
    return this.unparsed?.length ?? 0;
  }

  resume(): number {
    this.paused = false;
    const rest = this.unparsed;
    this.unparsed = undefined;
    return rest === undefined ? this.heldBytes : this.parse(rest);
  }

  parse(chunk: Buffer): number {
    if (this.paused) {
      this.unparsed = this.unparsed === undefined ? chunk : Buffer.concat([this.unparsed, chunk]);
      return this.heldBytes;
    }
    this.failed = false;
    let pos = 0;
    if (this.heldBytes > 0) {
      // Complete the held packet with as few of the chunk's bytes as it needs, then go on in the chunk.
      if (this.heldTotal === -1) {
        const head = Buffer.concat([...this.held, chunk.subarray(0, 5)]);
        this.heldTotal = packetSize(head, 0);
        if (this.heldTotal === -2) return this.refuse(head);
      }
      const need = this.heldTotal - this.heldBytes;
      if (this.heldTotal === -1 || chunk.length < need) return this.hold(chunk);
      const packet = Buffer.concat([...this.held, chunk.subarray(0, need)], this.heldTotal);
      this.held = [];
      this.heldBytes = 0;
      this.heldTotal = -1;
      this.one(packet, 0, packet.length);
      if (this.failed) return 0;
      pos = need;
      if (this.paused) return this.keepUnparsed(chunk, pos);
    }
    const end = chunk.length;
    while (pos < end) {
      const total = packetSize(chunk, pos);
      if (total === -2) return this.refuse(chunk.subarray(pos));
      if (total === -1 || pos + total > end) {
        this.heldTotal = total;
        return this.hold(chunk.subarray(pos));
      }
      this.one(chunk, pos, total);
      if (this.failed) return 0;
      pos += total;
      if (this.paused) return this.keepUnparsed(chunk, pos);
    }
    return 0;
  }

  private keepUnparsed(chunk: Buffer, pos: number): number {
    if (pos < chunk.length) this.unparsed = chunk.subarray(pos);
    return 0;
  }

  /** A Remaining Length longer than 4 bytes: the checked parser refuses it with its own message. */
  private refuse(bytes: Buffer): number {
    this.held = [];
    this.heldBytes = 0;
    this.heldTotal = -1;
    this.checked.parse(bytes);
    return 0;
  }

  /** Keeps an incomplete packet's bytes (copied: a slice would keep the whole socket read alive). */
  private hold(part: Buffer): number {
    this.held.push(Buffer.from(part));
    this.heldBytes += part.length;
    return this.heldBytes;
  }

  /** One whole packet at buf[pos, pos + total). */
  private one(buf: Buffer, pos: number, total: number): void {
    const b0 = buf[pos]!;
    if (b0 >> 4 === 3) {
      const packet = fastPublish(buf, pos, total, b0, this.checked.settings.protocolVersion === 5);
      if (packet !== undefined) return this.onPacket(packet as unknown as Packet);
    } else if (total <= 6) {
      const ack = fastAck(buf, pos, total, b0, this.checked.settings.protocolVersion === 5);
      if (ack !== undefined) return this.onPacket(ack as unknown as Packet);
    }
    this.checked.parse(pos === 0 && total === buf.length ? buf : buf.subarray(pos, pos + total));
  }
}

/**
 * The size of the packet at `pos` (fixed header included): -1 while its header is incomplete,
 * -2 when the Remaining Length is not a valid variable byte integer (more than 4 bytes).
 */
function packetSize(buf: Buffer, pos: number): number {
  let value = 0;
  let mul = 1;
  for (let i = 1; i <= 4; i++) {
    if (pos + i >= buf.length) return -1;
    const b = buf[pos + i]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return 1 + i + value;
    mul *= 128;
  }
  return -2;
}

/** The PUBLISH at buf[pos, pos + total) if the fast path can take it, else undefined. */
function fastPublish(buf: Buffer, pos: number, total: number, b0: number, v5: boolean): PublishPacket | undefined {
  const qos = (b0 >> 1) & 3;
  if (qos === 3) return undefined;
  const end = pos + total;
  let p = pos + 2;
  while (buf[p - 1]! & 0x80) p++;
  const length = end - p;
  if (p + 2 > end) return undefined;
  const topicEnd = p + 2 + ((buf[p]! << 8) | buf[p + 1]!);
  p += 2;
  if (topicEnd > end) return undefined;
  // ASCII without U+0000 is valid UTF-8 as it stands [MQTT-1.5.4-1, -2]; anything else takes the checked path.
  for (let i = p; i < topicEnd; i++) {
    const c = buf[i]!;
    if (c === 0 || c > 0x7f) return undefined;
  }
  const topic = buf.toString('latin1', p, topicEnd);
  p = topicEnd;
  let messageId: number | undefined;
  if (qos > 0) {
    if (p + 2 > end) return undefined;
    messageId = (buf[p]! << 8) | buf[p + 1]!;
    if (messageId === 0) return undefined;
    p += 2;
  }
  if (v5) {
    // Property Length 0 in one byte; properties (or a padded length) take the checked path.
    if (p >= end || buf[p] !== 0) return undefined;
    p++;
  }
  return new PublishPacket((b0 & 1) !== 0, qos as 0 | 1 | 2, (b0 & 8) !== 0, length, topic, buf.subarray(p, end), messageId);
}

/**
 * A subscriber's PUBACK (or QoS 2's PUBREC, PUBREL, PUBCOMP) at buf[pos, pos + total) if it says
 * only "success": the packet identifier, and in 5.0 perhaps Reason Code 0 and an empty property
 * set after it (mqtt-packet writes both). Anything else, and identifier 0, takes the checked path.
 */
function fastAck(buf: Buffer, pos: number, total: number, b0: number, v5: boolean): AckPacket | undefined {
  const cmd = ACKS[b0];
  const length = buf[pos + 1]!;
  if (cmd === undefined || length !== total - 2 || length < 2) return undefined;
  const id = (buf[pos + 2]! << 8) | buf[pos + 3]!;
  if (id === 0) return undefined;
  if (length > 2 && (!v5 || buf[pos + 4] !== 0 || (length === 4 && buf[pos + 5] !== 0))) return undefined;
  return new AckPacket(cmd, ((b0 >> 1) & 3) as 0 | 1, length, id, v5 ? 0 : undefined);
}

/** A new incremental MQTT parser that validates UTF-8 strings (FramingParser). */
export function createParser(): PacketParser {
  return new FramingParser();
}

export const generatePacket = mqttPacket.generate;
