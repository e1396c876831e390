import * as mp from 'mqtt-packet';
import { MemoryBackbone } from '@tributary/backbone';
import { loadConfig, silentLogger } from '@tributary/common';
import { createParser, Packet } from '@tributary/mqtt';
import { BackboneSessionStore, Broker, Channel, ChannelIO, GatewayConfig, gatewayConfigSchema, MESSAGES_TOPIC, PeerCertificate, RetainedStore } from '../src';

/** An in-memory ChannelIO: records what the channel writes, decoded back into packets. */
export class RecordingIO implements ChannelIO {
  readonly remoteAddress = 'test:1';
  listener = 'tcp:default';
  /** What peerCertificate() and pskIdentity() answer: set them to act as a TLS connection. */
  cert: PeerCertificate | undefined;
  psk: string | undefined;
  readonly packets: Packet[] = [];
  ended = false;
  keepalive = -1;
  paused = false;
  writable = true;
  progress = 0;
  private readonly parser = createParser();
  private waiters: { pred: (p: Packet) => boolean; resolve: (p: Packet) => void }[] = [];

  constructor() {
    this.parser.on('packet', (p) => {
      this.packets.push(p);
      this.waiters = this.waiters.filter((w) => (w.pred(p) ? (w.resolve(p), false) : true));
    });
  }

  write(data: Buffer): void {
    this.parser.parse(data);
  }
  end(): void {
    this.ended = true;
  }
  setKeepAlive(seconds: number): void {
    this.keepalive = seconds;
  }
  setProtocolVersion(version: number): void {
    this.parser.settings = { protocolVersion: version };
  }
  /** ReadPause bits currently set. */
  pausedBy = 0;
  /** Every pause and resume, in order: [reason, paused]. */
  readonly pauses: [number, boolean][] = [];
  pauseReading(reason: number): void {
    this.pausedBy |= reason;
    this.paused = true;
    this.pauses.push([reason, true]);
  }
  resumeReading(reason: number): void {
    this.pausedBy &= ~reason;
    this.paused = this.pausedBy !== 0;
    this.pauses.push([reason, false]);
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.cert;
  }
  pskIdentity(): string | undefined {
    return this.psk;
  }

  /** Resolves with the first packet (already sent or future) that satisfies pred. */
  next(pred: (p: Packet) => boolean, timeoutMs = 5000): Promise<Packet> {
    const found = this.packets.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for a packet')), timeoutMs);
      this.waiters.push({ pred, resolve: (p) => (clearTimeout(t), resolve(p)) });
    });
  }

  cmds(): string[] {
    return this.packets.map((p) => p.cmd);
  }
}

/** A broker on a memory backbone: no disk (tests of durability use an embedded backbone of their own). */
export async function testBroker(overrides: Record<string, unknown> = {}): Promise<{ broker: Broker; config: GatewayConfig; close(): Promise<void> }> {
  const { config } = loadConfig(gatewayConfigSchema, { env: {}, overrides });
  const backbone = new MemoryBackbone();
  await backbone.start();
  // As `tributary` does before the broker starts: every publish then has its offset up front.
  await backbone.ensureTopics([{ name: MESSAGES_TOPIC, cleanup: 'delete' }]);
  const broker = new Broker({ config, backbone, sessions: await BackboneSessionStore.open(backbone), retained: await RetainedStore.open(backbone), logger: silentLogger });
  await broker.start();
  return {
    broker,
    config,
    async close() {
      await broker.stop();
      await backbone.stop();
    },
  };
}

export function channel(broker: Broker, config: GatewayConfig): { ch: Channel; io: RecordingIO } {
  const io = new RecordingIO();
  return { ch: new Channel(io, broker, config, silentLogger), io };
}

/** A CONNECT with the tests' defaults (clean start, keep-alive 30). */
export function connectPacket(clientId: string, protocolVersion: 3 | 4 | 5 = 4, extra: Partial<mp.IConnectPacket> = {}): mp.IConnectPacket {
  return { cmd: 'connect', clientId, protocolVersion, protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT', clean: true, keepalive: 30, ...extra };
}

/** Round-trips a packet through the real generator and parser, as it would arrive on a socket. */
export function wire(packet: mp.Packet, protocolVersion = 4): Packet {
  const parser = createParser();
  parser.settings = { protocolVersion };
  let out: Packet | undefined;
  parser.on('packet', (p) => (out = p));
  parser.on('error', (e) => {
    throw e;
  });
  parser.parse(mp.generate(packet, { protocolVersion }));
  if (!out) throw new Error('packet did not parse');
  return out;
}
