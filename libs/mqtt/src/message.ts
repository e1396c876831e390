/** The broker's message: what a PUBLISH becomes once accepted, and its backbone encoding. */

export type QoS = 0 | 1 | 2;

/** MQTT 5.0 PUBLISH properties that travel with a message (§3.3.2.3). */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** Client id of the publisher ('' for the broker itself). */
  from: string;
  /** Milliseconds since the epoch at which the broker accepted it. */
  timestamp: number;
  properties: MessageProperties | undefined;
  /** Position in the backbone's messages topic; -1 until (or unless) it is logged. */
  offset: number;
}

export function newMessage(topic: string, payload: Buffer, qos: QoS, retain: boolean, from: string, properties?: MessageProperties): Message {
  return { topic, payload, qos, retain, from, timestamp: Date.now(), properties, offset: -1 };
}

/** Seconds left before the message expires, or undefined when it has no expiry. */
export function remainingExpiry(msg: Message, now: number): number | undefined {
  const e = msg.properties?.messageExpiryInterval;
  if (e === undefined) return undefined;
  return e - Math.floor((now - msg.timestamp) / 1000);
}

const CODEC_VERSION = 1;

function propsToJson(p: MessageProperties): string {
  return JSON.stringify(p, (k, v: unknown) => (k === 'correlationData' ? (v as Buffer | undefined)?.toString('base64') : v));
}

function propsFromJson(s: string): MessageProperties {
  const p = JSON.parse(s) as MessageProperties & { correlationData?: unknown };
  if (typeof p.correlationData === 'string') p.correlationData = Buffer.from(p.correlationData, 'base64');
  return p;
}

/**
 * Compact binary encoding (v1): version, flags (qos | retain<<2), timestamp, topic, from,
 * JSON properties, then the raw payload. The Kafka backbone will use the Avro schema instead.
 */
export function encodeMessage(msg: Message): Buffer {
  const props = msg.properties ? propsToJson(msg.properties) : '';
  const topicLen = Buffer.byteLength(msg.topic);
  const fromLen = Buffer.byteLength(msg.from);
  const propsLen = props ? Buffer.byteLength(props) : 0;
  const buf = Buffer.allocUnsafe(1 + 1 + 8 + 2 + topicLen + 2 + fromLen + 4 + propsLen + msg.payload.length);
  let o = buf.writeUInt8(CODEC_VERSION, 0);
  o = buf.writeUInt8(msg.qos | (msg.retain ? 4 : 0), o);
  o = buf.writeDoubleBE(msg.timestamp, o);
  o = buf.writeUInt16BE(topicLen, o);
  o += buf.write(msg.topic, o);
  o = buf.writeUInt16BE(fromLen, o);
  o += buf.write(msg.from, o);
  o = buf.writeUInt32BE(propsLen, o);
  if (propsLen) o += buf.write(props, o);
  msg.payload.copy(buf, o);
  return buf;
}

export function decodeMessage(buf: Buffer, offset = -1): Message {
  if (buf.length < 18 || buf.readUInt8(0) !== CODEC_VERSION) throw new Error('unknown message encoding');
  let o = 1;
  const flags = buf.readUInt8(o++);
  const timestamp = buf.readDoubleBE(o);
  o += 8;
  const topicLen = buf.readUInt16BE(o);
  o += 2;
  const topic = buf.toString('utf8', o, (o += topicLen));
  const fromLen = buf.readUInt16BE(o);
  o += 2;
  const from = buf.toString('utf8', o, (o += fromLen));
  const propsLen = buf.readUInt32BE(o);
  o += 4;
  const properties = propsLen ? propsFromJson(buf.toString('utf8', o, (o += propsLen))) : undefined;
  return { topic, payload: buf.subarray(o), qos: (flags & 3) as QoS, retain: (flags & 4) !== 0, from, timestamp, properties, offset };
}
