import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/** A byte stream to one client: TCP (or TLS) socket, or a WebSocket carrying binary frames. */
export interface Transport {
  readonly remoteAddress: string;
  /** Writes are coalesced until the end of the current tick. */
  write(data: Buffer): void;
  /** Flushes and closes; a peer that does not close its side in time is cut off. */
  end(): void;
  pause(): void;
  resume(): void;
  /** Bytes waiting in the transport's outgoing buffer. */
  readonly buffered: number;
}

const END_GRACE_MS = 2000;

export class TcpTransport implements Transport {
  readonly remoteAddress: string;
  private corked = false;

  constructor(private readonly socket: Socket) {
    this.remoteAddress = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
  }

  get buffered(): number {
    return this.socket.writableLength;
  }

  write(data: Buffer): void {
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(uncork, this);
    }
    s.write(data);
  }

  uncork(): void {
    this.corked = false;
    this.socket.uncork();
  }

  end(): void {
    const s = this.socket;
    if (s.destroyed) return;
    if (this.corked) this.uncork();
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

function uncork(t: TcpTransport): void {
  t.uncork();
}

export class WsTransport implements Transport {
  readonly remoteAddress: string;
  private pending: Buffer[] | undefined;

  constructor(
    private readonly ws: WebSocket,
    remoteAddress: string,
  ) {
    this.remoteAddress = remoteAddress;
  }

  get buffered(): number {
    return this.ws.bufferedAmount;
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
    this.ws.send(p.length === 1 ? p[0]! : Buffer.concat(p), { binary: true });
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
