import type { Logger, Rate } from '@tributary/common';
import type { GatewayConfig } from '../config';
import { createParser, generatePacket, Packet, PacketParser, RC } from '@tributary/mqtt';
import type { Broker } from '../broker/broker';
import { Channel, ChannelIO, ReadPause } from '../channel/channel';
import type { PeerCertificate } from './tls';
import { bucketFor, TokenBucket } from './rate-limit';
import type { Transport } from './transport';

/** A listener's per-client rates (listeners.<type>.default.messages_rate, bytes_rate). */
export interface ConnectionRates {
  messages: Rate;
  bytes: Rate;
}

/**
 * Owns one client's transport: feeds bytes through the MQTT parser to the channel, enforces
 * the packet-size limit, and carries the deadlines the gateway's ticker checks (CONNECT
 * timeout, keep-alive). It never interprets packets.
 */
export class Connection implements ChannelIO {
  readonly channel: Channel;
  private readonly parser: PacketParser;
  private lastActivity = Date.now();
  private keepaliveMs = 0;
  private readonly connectDeadline: number;
  private dead = false;
  /** ReadPause bits: reading is paused while any is set. */
  private pausedBy = 0;
  private readonly maxSendBuffer: number;
  /** messages_rate: PUBLISH packets received; undefined when infinite. */
  private readonly messagesBucket: TokenBucket | undefined;
  /** bytes_rate: bytes received; undefined when infinite. */
  private readonly bytesBucket: TokenBucket | undefined;
  /** Resumes reading once the rates allow it (one per paused connection). */
  private rateTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly transport: Transport,
    /** The listener it came in on, e.g. "tcp:default". */
    readonly listener: string,
    broker: Broker,
    private readonly config: GatewayConfig,
    log: Logger,
    private readonly onEnd: (c: Connection) => void,
    rates?: ConnectionRates,
  ) {
    this.channel = new Channel(this, broker, config, log);
    this.connectDeadline = this.lastActivity + config.mqtt.idle_timeout;
    this.parser = createParser();
    this.parser.on('packet', (p: Packet) => this.onPacket(p));
    this.parser.on('error', (err: Error) => this.onParseError(err));
    this.maxSendBuffer = config.mqtt.max_send_buffer;
    transport.watermark = this.maxSendBuffer;
    transport.onDrain = () => this.channel.socketDrained();
    this.messagesBucket = rates && bucketFor(rates.messages);
    this.bytesBucket = rates && bucketFor(rates.bytes);
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  get localAddress(): string | undefined {
    return this.transport.localAddress;
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.transport.peerCertificate();
  }

  pskIdentity(): string | undefined {
    return this.transport.pskIdentity();
  }

  /**
   * Bytes from the transport. A pause (Channel.hold, flow control, too many publishes awaiting
   * durability, rates) stops the parser after the packet being handled; the rest waits as bytes.
   */
  data(chunk: Buffer): void {
    if (this.dead) return;
    this.lastActivity = Date.now();
    const ch = this.channel;
    ch.recvCnt++;
    ch.recvOct += chunk.length;
    if (this.bytesBucket) this.rateLimited(this.bytesBucket.spend(chunk.length, this.lastActivity));
    // While reading is paused the parser keeps the chunk, in order, for later.
    this.parsed(this.parser.parse(chunk));
  }

  /** `buffered`: the bytes of an incomplete packet the parser holds. */
  private parsed(buffered: number): void {
    // An incomplete packet larger than we accept is refused before it is buffered whole.
    if (!this.dead && buffered > this.config.mqtt.max_packet_size + 5) this.tooLarge();
  }

  /** The transport closed. */
  closed(): void {
    this.clearRateTimer();
    if (this.dead && this.channel.state === 'closed') {
      this.onEnd(this);
      return;
    }
    this.dead = true;
    this.channel.handleClosed();
    this.onEnd(this);
  }

  /** Called by the gateway's ticker about once a second. */
  tick(now: number, retryBefore: number): void {
    const ch = this.channel;
    // A session being opened (scaled out: waiting for the router, replaying) is the broker's wait, not the client's.
    // So is a pause by flow control or for durability: the client's packets wait unread.
    if (ch.waiting || this.pausedBy !== 0) this.lastActivity = now;
    else if (ch.state === 'connecting' && now > this.connectDeadline) ch.handleTimeout('connect');
    else if (this.keepaliveMs > 0 && now - this.lastActivity > this.keepaliveMs) ch.handleTimeout('keepalive');
    else if (ch.credentialsExpireAt !== undefined && now >= ch.credentialsExpireAt) ch.handleTimeout('credentials');
    else if (retryBefore > 0 && ch.session && ch.session.inflightCount > 0 && ch.dialect.version < 5) ch.session.retry(retryBefore, now);
  }

  // ChannelIO
  get writable(): boolean {
    return this.transport.buffered < this.maxSendBuffer;
  }

  get progress(): number {
    return this.transport.sentBytes;
  }

  get writes(): number {
    return this.transport.writes;
  }

  write(data: Buffer): void {
    this.transport.write(data);
  }

  end(): void {
    this.clearRateTimer();
    this.dead = true;
    this.transport.end();
  }

  setKeepAlive(seconds: number): void {
    this.keepaliveMs = Math.ceil(seconds * 1000 * this.config.mqtt.keepalive_multiplier);
  }

  setProtocolVersion(version: number): void {
    // Replaces the CONNECT packet mqtt-packet keeps as its settings (it holds the password).
    this.parser.settings = { protocolVersion: version };
  }

  pauseReading(reason: ReadPause): void {
    if (this.pausedBy === 0) {
      this.transport.pause();
      // The rest of the chunk being parsed waits as bytes (PacketParser.pause).
      this.parser.pause();
    }
    this.pausedBy |= reason;
  }

  resumeReading(reason: ReadPause): void {
    if ((this.pausedBy & reason) === 0) return;
    this.pausedBy &= ~reason;
    if (this.pausedBy !== 0 || this.dead) return;
    if (this.parser.unparsedBytes === 0) {
      this.parser.resume();
      return this.transport.resume();
    }
    // Parse what waited first (next turn: the caller may be inside a packet handler); read after.
    // Paused again meanwhile: the next resume does it.
    setImmediate(() => {
      if (this.dead || this.pausedBy !== 0) return;
      this.parsed(this.parser.resume());
      if (this.pausedBy === 0 && !this.dead) this.transport.resume();
    });
  }

  private onPacket(packet: Packet): void {
    if (this.dead) return;
    if ((packet.length ?? 0) > this.config.mqtt.max_packet_size) return this.tooLarge();
    this.channel.handleIn(packet);
    if (this.messagesBucket && packet.cmd === 'publish') this.rateLimited(this.messagesBucket.spend(1));
  }

  /**
   * Over a rate (the bucket is `waitMs` in debt): stop reading until it has refilled. Nothing is
   * dropped: what was received is handled, the client's next bytes wait in its socket (TCP
   * backpressure). Later debt while paused is checked when the timer fires.
   */
  private rateLimited(waitMs: number): void {
    if (waitMs <= 0 || this.rateTimer !== undefined || this.dead) return;
    this.channel.broker.metrics['client.rate_limited']++;
    this.pauseReading(ReadPause.RateLimit);
    this.rateTimer = setTimeout(() => this.rateRefilled(), waitMs);
  }

  private rateRefilled(): void {
    this.rateTimer = undefined;
    if (this.dead) return;
    const wait = Math.max(this.messagesBucket?.wait() ?? 0, this.bytesBucket?.wait() ?? 0);
    if (wait > 0) this.rateTimer = setTimeout(() => this.rateRefilled(), wait);
    else this.resumeReading(ReadPause.RateLimit);
  }

  private clearRateTimer(): void {
    if (this.rateTimer !== undefined) clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
  }

  private onParseError(err: Error): void {
    if (this.dead) return;
    if (this.channel.state === 'connecting' && /protocol version|protocolId/i.test(err.message)) {
      // Unknown protocol level: CONNACK 0x01 in the 3.1.1 format, then close [MQTT-3.1.2-2].
      this.transport.write(generatePacket({ cmd: 'connack', returnCode: 1, sessionPresent: false }));
    }
    this.channel.handleMalformed(err.message);
    this.dead = true;
  }

  private tooLarge(): void {
    this.channel.handleMalformed('packet too large', RC.PACKET_TOO_LARGE);
    this.dead = true;
  }
}
