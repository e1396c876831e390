import { connect as netConnect, Socket } from 'node:net';
import * as mp from 'mqtt-packet';
import { createParser, Packet } from '@tributary/mqtt';

/**
 * A raw MQTT connection for tests that need what client libraries hide: exact bytes, no
 * automatic acknowledgements, malformed packets, and the broker's DISCONNECT reason codes.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  /** Every byte received, for checks on the exact encoding. */
  readonly chunks: Buffer[] = [];
  closed = false;
  private readonly parser = createParser();
  private waiters: { pred: (p: Packet) => boolean; resolve: (p: Packet) => void; reject: (e: Error) => void }[] = [];
  private closeWaiters: (() => void)[] = [];

  private constructor(
    readonly socket: Socket,
    private readonly protocolVersion: number,
  ) {
    this.parser.settings = { protocolVersion };
    this.parser.on('packet', (p) => {
      this.packets.push(p);
      this.waiters = this.waiters.filter((w) => (w.pred(p) ? (w.resolve(p), false) : true));
    });
    socket.on('data', (d) => {
      this.chunks.push(d);
      this.parser.parse(d);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters) w.reject(new Error('connection closed'));
      this.waiters = [];
      for (const c of this.closeWaiters) c();
    });
  }

  static open(port: number, protocolVersion = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(new RawClient(s, protocolVersion)));
      s.once('error', reject);
    });
  }

  /** Opens, sends CONNECT and waits for CONNACK. */
  static async connected(port: number, clientId: string, protocolVersion: 4 | 5 = 4, extra: Partial<mp.IConnectPacket> = {}): Promise<RawClient> {
    const c = await RawClient.open(port, protocolVersion);
    c.send({ cmd: 'connect', clientId, protocolVersion, protocolId: 'MQTT', clean: true, keepalive: 60, ...extra } as mp.IConnectPacket);
    await c.next('connack');
    return c;
  }

  send(packet: mp.Packet): void {
    this.socket.write(mp.generate(packet, { protocolVersion: this.protocolVersion }));
  }

  sendBytes(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The first packet of this type (or matching pred) received so far or later. */
  next(cmd: Packet['cmd'], pred: (p: Packet) => boolean = () => true, timeoutMs = 5000): Promise<Packet> {
    const match = (p: Packet): boolean => p.cmd === cmd && pred(p);
    const found = this.packets.find(match);
    if (found) return Promise.resolve(found);
    if (this.closed) return Promise.reject(new Error(`connection closed before ${cmd}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${cmd}`)), timeoutMs);
      this.waiters.push({ pred: match, resolve: (p) => (clearTimeout(t), resolve(p)), reject: (e) => (clearTimeout(t), reject(e)) });
    });
  }

  /** Resolves when the broker closed the connection. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.closeWaiters.push(() => (clearTimeout(t), resolve()));
    });
  }

  /** The reason code of the broker's DISCONNECT, if it sent one. */
  disconnectReason(): number | undefined {
    const d = this.packets.find((p) => p.cmd === 'disconnect') as mp.IDisconnectPacket | undefined;
    return d ? (d.reasonCode ?? 0) : undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
