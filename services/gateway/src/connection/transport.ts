import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { WebSocket } from 'ws';
import { PeerCertificate, peerCertificateOf } from './tls';
import { pskIdentityOf } from './psk';

/** A byte stream to one client: TCP (or TLS) socket, or a WebSocket carrying binary frames. */
export interface Transport {
  readonly remoteAddress: string;
  /** The broker's end of the connection, "ip:port" (undefined when not known). */
  readonly localAddress: string | undefined;
  /** Writes are coalesced until the end of the current tick. */
  write(data: Buffer): void;
  /** Flushes and closes; a peer that does not close its side in time is cut off. */
  end(): void;
  pause(): void;
  resume(): void;
  /** Bytes waiting in the transport's outgoing buffer. */
  readonly buffered: number;
  /** Bytes handed to the OS so far. */
  readonly sentBytes: number;
  /** Writes to the socket so far (one per tick with data: writes are coalesced), EMQX's send_cnt. */
  readonly writes: number;
  /** Called when the outgoing buffer has drained after it held `watermark` bytes or more. */
  onDrain: (() => void) | undefined;
  watermark: number;
  /** The verified client certificate (TLS listeners with verify_peer), else undefined. */
  peerCertificate(): PeerCertificate | undefined;
  /** The PSK identity the client's TLS-PSK handshake used, else undefined. */
  pskIdentity(): string | undefined;
}

/** What the TLS handshake of `socket` established about the client, read once. */
class TlsPeer {
  private cert: PeerCertificate | undefined | null = null;
  constructor(private readonly socket: TLSSocket | undefined) {}

  certificate(): PeerCertificate | undefined {
    if (this.cert === null) this.cert = this.socket ? peerCertificateOf(this.socket) : undefined;
    return this.cert;
  }

  psk(): string | undefined {
    return this.socket ? pskIdentityOf(this.socket) : undefined;
  }
}

const END_GRACE_MS = 2000;
/** Up to this many bytes per tick are copied into one buffer; beyond, they go out as a writev. */
const COALESCE_LIMIT = 64 * 1024;
/** A packet this large is written as it is, never copied. */
const LARGE_WRITE = 16 * 1024;

export class TcpTransport implements Transport {
  readonly remoteAddress: string;
  readonly localAddress: string;
  /** Packets written this tick; flushed as one socket write on the next tick. */
  private pending: Buffer[] | undefined;
  private pendingBytes = 0;
  writes = 0;
  onDrain: (() => void) | undefined;
  /** The socket's own 'drain' (its buffer emptied after a write past its high-water mark) is used instead. */
  watermark = 0;
  private readonly tls: TlsPeer;

  constructor(private readonly socket: Socket) {
    this.tls = new TlsPeer(socket instanceof TLSSocket ? socket : undefined);
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.localAddress = `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`;
    socket.setNoDelay(true);
    socket.on('drain', () => this.onDrain?.());
  }

  get buffered(): number {
    return this.socket.writableLength + this.pendingBytes;
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.tls.certificate();
  }

  pskIdentity(): string | undefined {
    return this.tls.psk();
  }

  get sentBytes(): number {
    // bytesWritten counts what the stream still buffers too.
    return this.socket.bytesWritten - this.socket.writableLength;
  }

  write(data: Buffer): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    this.pendingBytes += data.length;
    if (this.pending) {
      this.pending.push(data);
      return;
    }
    this.pending = [data];
    process.nextTick(flushTcp, this);
  }

  /**
   * One stream write per tick: copying small packets into one buffer is cheaper than the
   * stream's per-write bookkeeping (fan-in QoS 1, mostly 4-byte acks: about 8% more msg/s).
   */
  flush(): void {
    const p = this.pending;
    const bytes = this.pendingBytes;
    this.pending = undefined;
    this.pendingBytes = 0;
    const s = this.socket;
    if (!p || s.destroyed || s.writableEnded) return;
    this.writes++;
    if (p.length === 1) s.write(p[0]!);
    else if (bytes <= COALESCE_LIMIT) s.write(Buffer.concat(p, bytes));
    else {
      // One writev of buffers up to COALESCE_LIMIT each: small packets are copied together, large
      // ones go as they are. Writing each packet as it was kept one stream entry per packet in
      // the socket's buffer (a stalled or slow reader's MiB of them), all surviving young GCs.
      s.cork();
      let from = 0;
      let groupBytes = 0;
      for (let i = 0; i < p.length; i++) {
        const n = p[i]!.length;
        if (n >= LARGE_WRITE || groupBytes + n > COALESCE_LIMIT) {
          writeGroup(s, p, from, i, groupBytes);
          from = i;
          groupBytes = 0;
        }
        if (n >= LARGE_WRITE) {
          s.write(p[i]!);
          from = i + 1;
        } else groupBytes += n;
      }
      writeGroup(s, p, from, p.length, groupBytes);
      s.uncork();
    }
  }

  end(): void {
    const s = this.socket;
    if (s.destroyed) return;
    this.flush();
    s.end();
    setTimeout(() => s.destroy(), END_GRACE_MS).unref();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}

/** Writes p[from, to) (`bytes` long) as one buffer. */
function writeGroup(s: Socket, p: Buffer[], from: number, to: number, bytes: number): void {
  if (to - from === 1) s.write(p[from]!);
  else if (to > from) s.write(Buffer.concat(p.slice(from, to), bytes));
}

function flushTcp(t: TcpTransport): void {
  t.flush();
}

/** A WebSocket has no 'drain' event: its buffered amount is polled this often while it holds data. */
const WS_DRAIN_POLL_MS = 10;

export class WsTransport implements Transport {
  readonly remoteAddress: string;
  readonly localAddress: string | undefined;
  private pending: Buffer[] | undefined;
  onDrain: (() => void) | undefined;
  watermark = Infinity;
  private written = 0;
  writes = 0;
  private drainPoll: NodeJS.Timeout | undefined;
  private readonly tls: TlsPeer;

  /** `socket`: the HTTP connection the WebSocket was upgraded from (a TLSSocket on WSS). */
  constructor(
    private readonly ws: WebSocket,
    remoteAddress: string,
    socket?: Socket,
  ) {
    this.remoteAddress = remoteAddress;
    this.localAddress = socket ? `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}` : undefined;
    this.tls = new TlsPeer(socket instanceof TLSSocket ? socket : undefined);
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.tls.certificate();
  }

  pskIdentity(): string | undefined {
    return this.tls.psk();
  }

  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  get sentBytes(): number {
    return this.written - this.ws.bufferedAmount;
  }

  write(data: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.pending) {
      this.pending.push(data);
      return;
    }
    this.pending = [data];
    process.nextTick(flushWs, this);
  }

  flush(): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p || this.ws.readyState !== this.ws.OPEN) return;
    const data = p.length === 1 ? p[0]! : Buffer.concat(p);
    this.written += data.length;
    this.writes++;
    this.ws.send(data, { binary: true });
    if (this.ws.bufferedAmount >= this.watermark && this.drainPoll === undefined) this.drainPoll = setTimeout(pollWs, WS_DRAIN_POLL_MS, this);
  }

  /** Calls onDrain once the socket sent what it held (or closed). */
  poll(): void {
    this.drainPoll = undefined;
    if (this.ws.readyState === this.ws.OPEN && this.ws.bufferedAmount >= this.watermark) {
      this.drainPoll = setTimeout(pollWs, WS_DRAIN_POLL_MS, this);
      return;
    }
    this.onDrain?.();
  }

  end(): void {
    this.flush();
    this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), END_GRACE_MS).unref();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }
}

function flushWs(t: WsTransport): void {
  t.flush();
}

function pollWs(t: WsTransport): void {
  t.poll();
}
