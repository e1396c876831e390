import assert from 'node:assert/strict';
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
  private listeners: ((p: Packet) => void)[] = [];

  private constructor(
    readonly socket: Socket,
    private readonly protocolVersion: number,
  ) {
    this.parser.settings = { protocolVersion };
    this.parser.on('packet', (p) => {
      this.packets.push(p);
      for (const l of this.listeners) l(p);
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

  /** Calls `listener` with every packet received from now on. */
  onPacket(listener: (p: Packet) => void): void {
    this.listeners.push(listener);
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

/**
 * A raw subscriber that acknowledges like a well-behaved client (PUBACK; PUBREC, then PUBCOMP on
 * PUBREL) and keeps every PUBLISH packet as it came off the wire: unlike mqtt.js it hides no
 * repeated packet id and delivers nothing late, so duplicates on the wire are counted.
 */
export async function wireSubscriber(port: number, clientId: string, filters: string | string[] | undefined, extra: Partial<mp.IConnectPacket> = {}): Promise<RawClient> {
  const c = await RawClient.open(port, 5);
  c.onPacket((p) => {
    if (p.cmd === 'publish' && p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId! });
    if (p.cmd === 'publish' && p.qos === 2) c.send({ cmd: 'pubrec', messageId: p.messageId! });
    if (p.cmd === 'pubrel') c.send({ cmd: 'pubcomp', messageId: p.messageId! });
  });
  c.send({ cmd: 'connect', clientId, protocolVersion: 5, protocolId: 'MQTT', clean: true, keepalive: 60, ...extra } as mp.IConnectPacket);
  await c.next('connack');
  if (filters !== undefined) {
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [filters].flat().map((topic) => ({ topic, qos: 2 as const })) });
    await c.next('suback');
  }
  return c;
}

/**
 * A 5.0 publisher with a persistent session sends a QoS 2 PUBLISH on `topic` and gets PUBREC,
 * loses its connection, reconnects (to `againPort()`, another gateway when scaled out, after
 * `between` ran, e.g. a broker restart) and resends the PUBLISH with DUP set, as
 * [MQTT-4.4.0-1] requires; then PUBREL / PUBCOMP, and a QoS 1 `marker` on the same topic behind
 * it. Returns the connection (the caller closes it).
 */
export async function publishQos2ResentAfterReconnect(
  firstPort: number,
  againPort: () => number,
  clientId: string,
  topic: string,
  payload: string,
  marker: string,
  between: () => Promise<void> = async () => undefined,
): Promise<RawClient> {
  const session = { clean: false, properties: { sessionExpiryInterval: 300 } };
  const publish: mp.IPublishPacket = { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 2, messageId: 7, retain: false, dup: false };
  const first = await RawClient.connected(firstPort, clientId, 5, session);
  first.send(publish);
  await first.next('pubrec', (p) => p.messageId === 7);
  first.destroy();
  await first.waitClosed();
  await between();
  const again = await RawClient.connected(againPort(), clientId, 5, session);
  assert.equal((again.packets[0] as mp.IConnackPacket).sessionPresent, true, 'the publisher session survived the reconnect');
  again.send({ ...publish, dup: true });
  await again.next('pubrec', (p) => p.messageId === 7);
  again.send({ cmd: 'pubrel', messageId: 7 });
  await again.next('pubcomp', (p) => p.messageId === 7);
  again.send({ cmd: 'publish', topic, payload: Buffer.from(marker), qos: 1, messageId: 8, retain: false, dup: false });
  await again.next('puback', (p) => p.messageId === 8);
  return again;
}

/** The payloads of every PUBLISH a raw client received, in wire order (duplicates included). */
export function wirePayloads(c: RawClient): string[] {
  return c.packets.filter((p): p is mp.IPublishPacket => p.cmd === 'publish').map((p) => p.payload.toString());
}

/** Resolves with the first PUBLISH carrying `payload` a raw client received (so far or later). */
export function wirePublish(c: RawClient, payload: string, timeoutMs = 10_000): Promise<mp.IPublishPacket> {
  return c.next('publish', (p) => (p as mp.IPublishPacket).payload.toString() === payload, timeoutMs) as Promise<mp.IPublishPacket>;
}
