/**
 * A minimal raw-socket MQTT 3.1.1 client for load generation. mqtt.js costs far more CPU per
 * message than a broker does, so on a 2-core machine it would measure itself; this client
 * pre-encodes packets, parses incoming frames in place and writes whole batches at once.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function utf8(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const h = Buffer.alloc(2);
  h.writeUInt16BE(b.length);
  return Buffer.concat([h, b]);
}

function frame(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first, ...remainingLength(body.length)]), body]);
}

export interface Credentials {
  username: string;
  password: string;
}

export function encodeConnect(clientId: string, keepAliveS: number, cred?: Credentials): Buffer {
  // Protocol level 4 (3.1.1), flags 0x02 = clean session (+0xC0 username and password), no will.
  const fixed = Buffer.from([4, cred ? 0xc2 : 0x02, keepAliveS >> 8, keepAliveS & 0xff]);
  return frame(0x10, Buffer.concat([utf8('MQTT'), fixed, utf8(clientId), ...(cred ? [utf8(cred.username), utf8(cred.password)] : [])]));
}

export function encodeSubscribe(packetId: number, filter: string, qos: 0 | 1): Buffer {
  return frame(0x82, Buffer.concat([Buffer.from([packetId >> 8, packetId & 0xff]), utf8(filter), Buffer.from([qos])]));
}

export function encodePuback(packetId: number): Buffer {
  return Buffer.from([0x40, 2, packetId >> 8, packetId & 0xff]);
}

export const DISCONNECT = Buffer.from([0xe0, 0]);

/** A pre-encoded PUBLISH; batch() stamps copies so only the varying bytes are written per message. */
export class PublishTemplate {
  readonly packet: Buffer;
  /** Offset of the packet identifier, or -1 for QoS 0. */
  readonly idOffset: number;
  readonly payloadOffset: number;

  /** payload: a size (that many bytes of 'a') or the bytes every copy starts with. */
  constructor(topic: string, readonly qos: 0 | 1, payload: number | Buffer) {
    const topicBuf = utf8(topic);
    const idLen = qos > 0 ? 2 : 0;
    const body = typeof payload === 'number' ? Buffer.alloc(payload, 0x61) : payload;
    const head = Buffer.from([0x30 | (qos << 1), ...remainingLength(topicBuf.length + idLen + body.length)]);
    this.packet = Buffer.concat([head, topicBuf, Buffer.alloc(idLen), body]);
    this.idOffset = qos > 0 ? head.length + topicBuf.length : -1;
    this.payloadOffset = head.length + topicBuf.length + idLen;
  }

  /** n copies in one buffer; the caller fills ids/payload fields at i * packet.length. */
  batch(n: number): Buffer {
    const len = this.packet.length;
    const buf = Buffer.allocUnsafe(n * len);
    for (let i = 0; i < n; i++) this.packet.copy(buf, i * len);
    return buf;
  }
}

export interface Handlers {
  onPublish?(buf: Buffer, payloadOffset: number, payloadLength: number, qos: number, packetId: number): void;
  onPuback?(packetId: number): void;
  /** Called once per socket read after all frames in it were parsed (flush batched acks here). */
  onChunkEnd?(): void;
}

/** Safe to share: every read is parsed synchronously and leftovers are copied out before the next read. */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** A connection with an incremental frame parser; handlers are swapped per scenario role. */
export class Conn {
  readonly socket: net.Socket;
  handlers: Handlers = {};
  private rest: Buffer | null = null;
  private waiters = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  closed = false;

  /** useTls: MQTT over TLS (the broker's self-signed certificate is accepted unchecked). */
  constructor(port: number, localAddress?: string, useTls = false) {
    if (useTls) {
      // A TLS socket hands over decrypted data through 'data' events; onread does not apply to it.
      this.socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(localAddress ? { localAddress } : {}) });
      this.socket.setNoDelay(true);
      this.socket.on('data', (d: Buffer) => this.push(d));
    } else {
      this.socket = net.connect({
        host: '127.0.0.1',
        port,
        noDelay: true,
        ...(localAddress ? { localAddress } : {}),
        // Read into one shared buffer, skipping the stream machinery and a Buffer allocation per read.
        onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => (this.push(buf.subarray(0, n) as Buffer), true) },
      });
    }
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => this.fail(new Error('connection closed by broker')));
  }

  private fail(err: Error): void {
    this.closed = true;
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
  }

  /** Resolves with the CONNACK/SUBACK return code of packet type `type` (2 or 9). */
  private wait(type: number, timeoutMs: number): Promise<number> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(type);
        reject(new Error(`timeout waiting for ${type === 2 ? 'CONNACK' : 'SUBACK'}`));
      }, timeoutMs);
      this.waiters.set(type, {
        resolve: (v) => (clearTimeout(t), resolve(v)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
    });
  }

  async connect(clientId: string, keepAliveS: number, timeoutMs = 10_000, cred?: Credentials): Promise<void> {
    const acked = this.wait(2, timeoutMs);
    this.socket.write(encodeConnect(clientId, keepAliveS, cred));
    const rc = await acked;
    if (rc !== 0) throw new Error(`CONNACK return code ${rc}`);
  }

  async subscribe(filter: string, qos: 0 | 1, timeoutMs = 10_000): Promise<void> {
    const acked = this.wait(9, timeoutMs);
    this.socket.write(encodeSubscribe(1, filter, qos));
    const rc = await acked;
    if (rc === 0x80) throw new Error(`SUBACK refused ${filter}`);
  }

  close(): void {
    if (!this.socket.destroyed) {
      this.socket.end(DISCONNECT);
      this.socket.destroySoon();
      // A broker that never closes must not keep the socket around.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
  }

  private push(chunk: Buffer): void {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const end = buf.length;
    let off = 0;
    for (;;) {
      if (off + 2 > end) break;
      // Remaining length: up to 4 bytes of 7-bit groups.
      let len = 0;
      let mult = 1;
      let i = off + 1;
      let complete = false;
      for (let k = 0; k < 4 && i < end; k++) {
        const b = buf[i++]!;
        len += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i - off > 4) return void this.socket.destroy(new Error('malformed remaining length'));
        break;
      }
      if (i + len > end) break;
      this.dispatch(buf, buf[off]!, i, len);
      off = i + len;
    }
    // Copy: buf may be the shared read buffer, which the next read overwrites.
    this.rest = off < end ? Buffer.from(buf.subarray(off)) : null;
    this.handlers.onChunkEnd?.();
  }

  private dispatch(buf: Buffer, first: number, start: number, len: number): void {
    switch (first >> 4) {
      case 3: {
        const qos = (first >> 1) & 3;
        let p = start + 2 + buf.readUInt16BE(start);
        let id = 0;
        if (qos > 0) {
          id = buf.readUInt16BE(p);
          p += 2;
        }
        this.handlers.onPublish?.(buf, p, start + len - p, qos, id);
        break;
      }
      case 4:
        this.handlers.onPuback?.(buf.readUInt16BE(start));
        break;
      case 2: // CONNACK: session-present byte, then return code
        this.resolve(2, buf[start + 1] ?? 255);
        break;
      case 9: // SUBACK: packet id, then one return code per filter
        this.resolve(9, buf[start + 2] ?? 0x80);
        break;
      default: // PINGRESP and anything else are irrelevant here
    }
  }

  private resolve(type: number, code: number): void {
    const w = this.waiters.get(type);
    this.waiters.delete(type);
    w?.resolve(code);
  }
}
