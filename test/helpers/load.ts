import { connect as netConnect, Socket } from 'node:net';
import * as mp from 'mqtt-packet';

/**
 * Lean raw-socket load clients for flow-control tests: an open-loop publisher (limited only by
 * PUBACKs, as devices publish) and a subscriber that acknowledges at once and records what it
 * got. mqtt.js would cost more CPU than the broker and hides packet ids; these parse frames in place.
 */

function connectFrame(clientId: string, clean = true): Buffer {
  return mp.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 60 } as mp.IConnectPacket);
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Splits a byte stream into MQTT frames: calls `frame(type, flags, body)` for each complete one. */
class Framer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly frame: (first: number, body: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (buf.length - at < 2) break;
      let len = 0;
      let mul = 1;
      let i = at + 1;
      let complete = false;
      for (; i < buf.length && i < at + 5; i++) {
        const b = buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete || buf.length - i < len) break;
      this.frame(buf[at]!, buf.subarray(i, i + len));
      at = i + len;
    }
    buf = buf.subarray(at);
    this.buf = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}

export interface PublishStats {
  sent: number;
  acked: number;
  closed: boolean;
}

/**
 * Publishes `count` QoS 1 (or QoS 0) messages to `topic`, keeping `window` awaiting PUBACK.
 * The payload is `size` bytes starting with the publisher index (u16) and sequence number (u32).
 * QoS 0 writes while the socket takes them (socket backpressure only). Resolves when every
 * message is acknowledged (QoS 1) or written (QoS 0).
 */
export async function openLoopPublish(port: number, opts: { clientId: string; topic: string; count: number; index?: number; qos?: 0 | 1; size?: number; window?: number }): Promise<PublishStats> {
  const { clientId, topic, count } = opts;
  const qos = opts.qos ?? 1;
  const size = Math.max(6, opts.size ?? 64);
  const window = opts.window ?? 32;
  const s = await open(port);
  s.setNoDelay(true);
  const stats: PublishStats = { sent: 0, acked: 0, closed: false };
  const payload = (seq: number): Buffer => {
    const p = Buffer.alloc(size, 0x61);
    p.writeUInt16BE(opts.index ?? 0, 0);
    p.writeUInt32BE(seq, 2);
    return p;
  };
  const frame = (seq: number): Buffer =>
    mp.generate({ cmd: 'publish', topic, payload: payload(seq), qos, retain: false, dup: false, messageId: qos ? (seq % 65535) + 1 : undefined } as mp.IPublishPacket);
  return new Promise<PublishStats>((resolve, reject) => {
    let connected = false;
    const pump = (): void => {
      if (qos === 1) {
        const out: Buffer[] = [];
        while (stats.sent < count && stats.sent - stats.acked < window) out.push(frame(stats.sent++));
        if (out.length) s.write(Buffer.concat(out));
        return;
      }
      while (stats.sent < count) {
        if (!s.write(frame(stats.sent++))) return void s.once('drain', pump);
      }
      s.end();
      resolve(stats);
    };
    const framer = new Framer((first) => {
      const type = first >> 4;
      if (type === 2 && !connected) {
        connected = true;
        pump();
      } else if (type === 4) {
        stats.acked++;
        if (stats.acked === count) {
          s.end();
          resolve(stats);
        } else pump();
      }
    });
    s.on('data', (d: Buffer) => framer.push(d));
    s.on('close', () => {
      stats.closed = true;
      if (qos === 1 && stats.acked < count) reject(new Error(`publisher ${clientId} disconnected after ${stats.acked} of ${count} PUBACKs`));
    });
    s.on('error', () => undefined);
    s.write(connectFrame(clientId));
  });
}

/** A subscriber that acknowledges every QoS 1 PUBLISH at once and records (publisher, sequence) pairs. */
export class LoadSubscriber {
  /** Sequence numbers received, per publisher index, in arrival order. */
  readonly received = new Map<number, number[]>();
  total = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  private readonly framer: Framer;
  private subacked: (() => void) | undefined;
  private connacked: (() => void) | undefined;
  private acks: Buffer[] = [];

  private constructor(readonly socket: Socket) {
    this.framer = new Framer((first, body) => this.frame(first, body));
    socket.on('data', (d: Buffer) => {
      this.framer.push(d);
      if (this.acks.length) {
        socket.write(Buffer.concat(this.acks));
        this.acks = [];
      }
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number, clientId: string, filter: string, qos: 0 | 1 = 1, clean = true): Promise<LoadSubscriber> {
    const sub = new LoadSubscriber(await open(port));
    const connack = new Promise<void>((r) => (sub.connacked = r));
    sub.socket.write(connectFrame(clientId, clean));
    await connack;
    const suback = new Promise<void>((r) => (sub.subacked = r));
    sub.socket.write(mp.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] } as mp.ISubscribePacket));
    await suback;
    return sub;
  }

  /** Stops reading the socket (the broker's writes back up), or reads again. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Resolves once `n` messages arrived in all. */
  waitFor(n: number, timeoutMs = 60_000): Promise<void> {
    if (this.total >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`subscriber got ${this.total} of ${n} messages`)), timeoutMs);
      this.waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  /** True when every publisher's sequence numbers arrived in increasing order. */
  inOrder(): boolean {
    for (const seqs of this.received.values()) for (let i = 1; i < seqs.length; i++) if (seqs[i]! <= seqs[i - 1]!) return false;
    return true;
  }

  close(): void {
    this.socket.destroy();
  }

  private frame(first: number, body: Buffer): void {
    const type = first >> 4;
    if (type === 2) return this.connacked?.();
    if (type === 9) return this.subacked?.();
    if (type !== 3) return;
    const qos = (first >> 1) & 3;
    const topicLen = body.readUInt16BE(0);
    let at = 2 + topicLen;
    if (qos > 0) {
      const id = body.readUInt16BE(at);
      at += 2;
      this.acks.push(Buffer.from([0x40, 2, id >> 8, id & 0xff]));
    }
    const pub = body.readUInt16BE(at);
    const seq = body.readUInt32BE(at + 2);
    let list = this.received.get(pub);
    if (!list) this.received.set(pub, (list = []));
    list.push(seq);
    this.total++;
    if (this.waiters.length) this.waiters = this.waiters.filter((w) => (this.total >= w.n ? (w.resolve(), false) : true));
  }
}

/**
 * A 3.1.1 publisher at a fixed rate of QoS 1 messages, however slowly PUBACKs come (no window:
 * a stalled broker sees them pile up). Payloads as openLoopPublish's (index, sequence), so a
 * LoadSubscriber reads them. Records when each message was written and acknowledged.
 */
export class RatePublisher {
  /** Write time of message `seq` (ms). */
  readonly sentAt: number[] = [];
  /** PUBACK time of message `seq` (ms), undefined while unacknowledged. */
  readonly ackedAt: (number | undefined)[] = [];
  acked = 0;
  closed = false;
  private readonly framer: Framer;
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly socket: Socket,
    private readonly topic: string,
    private readonly index: number,
  ) {
    this.framer = new Framer((first, body) => {
      if (first >> 4 !== 4) return;
      const seq = this.seqOf(body.readUInt16BE(0));
      if (seq === undefined || this.ackedAt[seq] !== undefined) return;
      this.ackedAt[seq] = Date.now();
      this.acked++;
      if (this.acked === this.sentAt.length) for (const w of this.waiters.splice(0)) w();
    });
    socket.on('data', (d: Buffer) => this.framer.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static async connect(port: number, clientId: string, topic: string, index = 0): Promise<RatePublisher> {
    const s = await open(port);
    s.setNoDelay(true);
    const connack = new Promise<void>((resolve, reject) => {
      s.once('data', (d: Buffer) => (d[0]! >> 4 === 2 && d[3] === 0 ? resolve() : reject(new Error(`CONNACK refused: ${d.toString('hex')}`))));
      s.once('close', () => reject(new Error('closed before CONNACK')));
    });
    s.write(connectFrame(clientId));
    await connack;
    return new RatePublisher(s, topic, index);
  }

  /** Publishes `rate` messages per second until stop(). */
  start(rate: number): void {
    this.started = Date.now();
    this.timer = setInterval(() => {
      const due = Math.floor(((Date.now() - this.started) * rate) / 1000);
      const out: Buffer[] = [];
      while (this.sentAt.length < due) {
        const seq = this.sentAt.length;
        this.sentAt.push(Date.now());
        const payload = Buffer.alloc(16, 0x61);
        payload.writeUInt16BE(this.index, 0);
        payload.writeUInt32BE(seq, 2);
        out.push(mp.generate({ cmd: 'publish', topic: this.topic, payload, qos: 1, retain: false, dup: false, messageId: (seq % 65535) + 1 } as mp.IPublishPacket));
      }
      if (out.length) this.socket.write(Buffer.concat(out));
    }, 5);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Resolves once every message written so far is acknowledged. */
  allAcked(timeoutMs = 30_000): Promise<void> {
    if (this.acked === this.sentAt.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.acked} of ${this.sentAt.length} PUBACKs`)), timeoutMs);
      this.waiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  close(): void {
    this.stop();
    this.socket.destroy();
  }

  /** The oldest unacknowledged message with this packet id (ids repeat every 65535 messages). */
  private seqOf(id: number): number | undefined {
    for (let seq = id - 1; seq < this.sentAt.length; seq += 65535) if (this.ackedAt[seq] === undefined) return seq;
    return undefined;
  }
}
