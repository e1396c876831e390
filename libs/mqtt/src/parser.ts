import { isUtf8 } from 'node:buffer';
import { dirname } from 'node:path';

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
  _list: { length: number; toString(enc: 'utf8', start: number, end: number): string; slice(start: number, end: number): Buffer };
  _pos: number;
  _parseNum(): number;
  packet: { length: number; cmd?: string };
}

/** Thrown (emitted) for well-formed framing that carries an invalid UTF-8 string [MQTT-1.5.4-1]. */
export class Utf8Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Utf8Error';
  }
}

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
    this._emitError(new Utf8Error('invalid UTF-8 string'));
    return null;
  }
  if (result.includes(NUL)) {
    this._emitError(new Utf8Error('U+0000 in a UTF-8 string'));
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

class CheckedParser extends ParserClass {}
const proto = CheckedParser.prototype as unknown as Record<string, unknown>;
proto._parseString = checkedParseString;
proto._resetState = resetState;

/** A new incremental MQTT parser that validates UTF-8 strings. */
export function createParser(): MqttParser {
  const p = new CheckedParser();
  (p as unknown as { parser(opts: object): MqttParser }).parser({});
  return p;
}

export const generatePacket = mqttPacket.generate;
