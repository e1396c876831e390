import type * as mp from 'mqtt-packet';
import type { Logger } from '@tributary/common';
import type { ConnectInfo, Credentials, DisconnectProperties } from '@tributary/hooks';
import { encodeAck, generatePacket, Packet, RC, reasonName } from '@tributary/mqtt';
import type { Broker, PublishOrigin } from '../broker/broker';
import type { Pausable } from '../broker/flow';
import type { GatewayConfig } from '../config';
import type { PeerCertificate } from '../connection/tls';
import type { Session } from '../session/session';
import type { Delivery, SessionOwner, Will } from '../session/types';
import { dispatch } from './dispatch';
import type { AuthExchange } from './handlers/auth';
import { Outgoing } from './outgoing';
import { Dialect, dialectFor, ProtocolViolation } from './protocol';
import type { AckCmd, Step, Steps, Wait } from './steps';

/** Why reading a connection is paused; it reads again once no reason is left. */
export const enum ReadPause {
  /** Too many of its publishes await durability. */
  Publishes = 1,
  /** A broker operation later packets must wait for (Channel.hold). */
  Hold = 2,
  /** Flow control: subscribers of this process are behind. */
  Flow = 4,
  /** The listener's messages_rate or bytes_rate: the client sent faster than it may. */
  RateLimit = 8,
}

/** What a channel needs from its connection: bytes out, close, timers and read pausing. */
export interface ChannelIO {
  readonly remoteAddress: string;
  /** The broker's end, "ip:port", where known (EMQX's sockname). */
  readonly localAddress?: string;
  /** The listener the connection came in on, e.g. "tcp:default". */
  readonly listener: string;
  /** False while the socket holds mqtt.max_send_buffer unsent bytes. */
  readonly writable: boolean;
  /** Bytes handed to the OS so far. */
  readonly progress: number;
  /** Socket writes so far (EMQX's send_cnt); undefined where the transport does not count them. */
  readonly writes?: number;
  write(data: Buffer): void;
  /** Flushes what was written and closes the connection. */
  end(): void;
  /** Keep-alive in seconds (0 = none); the connection enforces 1.5× (configurable). */
  setKeepAlive(seconds: number): void;
  /** Tells the parser which protocol version later packets use. */
  setProtocolVersion(version: number): void;
  pauseReading(reason: ReadPause): void;
  resumeReading(reason: ReadPause): void;
  /** The client certificate that verified on a TLS listener with verify_peer, else undefined. */
  peerCertificate(): PeerCertificate | undefined;
  /** The identity of a TLS-PSK handshake, else undefined. */
  pskIdentity(): string | undefined;
}

export type ChannelState = 'connecting' | 'connected' | 'closed';

/** The backbone refused an append because Kafka stalled past backbone.kafka.stall_timeout (its episode is logged there). */
export function backboneStalled(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'BACKBONE_STALLED';
}

/** Pause reading a client's socket while this many of its publishes await durability. */
const MAX_PENDING_PUBLISHES = 1000;

/**
 * The per-connection MQTT state machine. Packets come in through `handleIn`; handlers
 * (dispatch.ts, handlers/*) return steps (steps.ts): replies, a close, and operations to wait
 * for with what follows them. `run` is the one place that performs steps and awaits what must
 * be awaited. Publishing, sessions and routing are the broker's. It never touches a socket, so
 * it can be tested over an in-memory ChannelIO.
 */
export class Channel implements SessionOwner, Pausable, PublishOrigin {
  state: ChannelState = 'connecting';
  dialect: Dialect = dialectFor(4);
  clientId = '';
  username: string | undefined;
  /** Who the client is, as hooks see it (from CONNECT on). */
  client: ConnectInfo | undefined;
  /** Why the connection ended, for client.disconnected. */
  private endReason: string | undefined;
  /** The properties of the client's DISCONNECT (5.0), for client.disconnected. */
  disconnectProperties: DisconnectProperties | undefined;
  private host: string | undefined;
  session: Session | undefined;
  will: Will | undefined;
  keepalive = 0;
  /** When the CONNECT was accepted (ms since the epoch), for the HTTP API. */
  connectedAt = 0;
  /** Session expiry requested at CONNECT (seconds); DISCONNECT may change it. */
  expiryInterval = 0;
  /** The client's Maximum Packet Size (v5), or Infinity. */
  clientMaxPacketSize = Infinity;
  /** An enhanced-authentication exchange in progress. */
  auth: AuthExchange | undefined;
  /** The Authentication Method the client authenticated with (v5), for re-authentication. */
  authMethod: string | undefined;
  /** When the client's credentials expire (ms since the epoch; a JWT's exp), set by authentication. */
  credentialsExpireAt: number | undefined;
  private topicAliases: Map<number, string> | undefined;
  /** The client's Topic Alias Maximum (v5): how many aliases the broker may assign. */
  clientTopicAliasMax = 0;
  /** The client's Request Problem Information (v5): false when it asked for no Reason Strings. */
  problemInformation = true;
  private readonly outgoing = new Outgoing(this);
  private pendingPublishes = 0;
  /** Broker operations later packets must wait for (see hold()). */
  private holds = 0;
  /** Packets parsed while later packets must wait (a hold, or flow control's pause), in order. */
  private waitingPackets: Packet[] | undefined;
  private flowPaused = false;
  /** The promise the last QoS 0 publishes share, and how many share it (awaitShared). */
  private sharedPublish: Promise<unknown> | undefined;
  private sharedBatch: { count: number } | undefined;
  // EMQX's per-client traffic counters (GET /clients): plain number fields, one increment where a
  // chunk, packet or message passes; send_cnt is the transport's (io.writes).
  /** Socket reads (recv_cnt) and their bytes (recv_oct); counted by the connection. */
  recvCnt = 0;
  recvOct = 0;
  /** MQTT packets received (recv_pkt). */
  recvPkt = 0;
  /** PUBLISH messages received and accepted for publishing (recv_msg, recv_msg.qos0/1/2). */
  recvMsg = 0;
  recvQos0 = 0;
  recvQos1 = 0;
  recvQos2 = 0;
  /** MQTT packets sent (send_pkt) and their bytes (send_oct). */
  sendPkt = 0;
  sendOct = 0;
  /** PUBLISH messages sent (send_msg, send_msg.qos0/1/2), resends included. */
  sendMsg = 0;
  sendQos0 = 0;
  sendQos1 = 0;
  sendQos2 = 0;

  constructor(
    readonly io: ChannelIO,
    readonly broker: Broker,
    readonly config: GatewayConfig,
    readonly log: Logger,
  ) {}

  get protocolVersion(): number {
    return this.dialect.version;
  }

  get v5(): boolean {
    return this.dialect.v5;
  }

  /**
   * Client→server topic aliases (v5): a PUBLISH with topic and alias sets it, one with only the
   * alias uses it. Alias 0 or above our Topic Alias Maximum is invalid [MQTT-3.3.2-8], [MQTT-3.3.2-9].
   */
  resolveTopicAlias(alias: number, topic: string): string {
    if (alias === 0 || alias > this.config.mqtt.max_topic_alias) throw new ProtocolViolation(RC.TOPIC_ALIAS_INVALID, `topic alias ${alias}`);
    // Created on first use, as most connections never alias.
    const aliases = (this.topicAliases ??= new Map());
    if (topic.length > 0) {
      aliases.set(alias, topic);
      return topic;
    }
    const known = aliases.get(alias);
    if (known === undefined) throw new ProtocolViolation(RC.PROTOCOL_ERROR, `unknown topic alias ${alias}`);
    return known;
  }

  /** The peer's address without the port. */
  get peerhost(): string {
    return (this.host ??= this.io.remoteAddress.replace(/:\d+$/, ''));
  }

  /** The peer's address and port, "ip:port". */
  get peername(): string {
    return this.io.remoteAddress;
  }

  /** The client's attributes (the record headers of its messages while publisher headers are on). */
  get clientAttrs(): Readonly<Record<string, string>> | undefined {
    return this.client?.clientAttrs;
  }

  /** Credentials of this connected client for a re-authentication (AUTH 0x19). */
  credentials(authMethod: string, reauthenticate: boolean): Credentials {
    return { clientId: this.clientId, username: this.username, password: undefined, peerhost: this.peerhost, protocolVersion: this.dialect.version, listener: this.io.listener, authMethod, reauthenticate, clientAttrs: this.client?.clientAttrs };
  }

  /** Refuses the CONNECT: CONNACK with the reason (client.connack sees it), then close. */
  refuse(reasonCode: number, why: string): void {
    this.log.debug({ clientId: this.clientId, rc: reasonCode, why }, 'connect refused');
    this.send(this.dialect.connack(reasonCode, false));
    if (this.client) this.broker.hooks.notify('client.connack', this.client, reasonCode);
    this.close(reasonCode);
  }

  /** Handles one incoming packet: the dispatcher picks the handler, `run` performs what it returns. */
  handleIn(packet: Packet): void {
    if (this.state === 'closed') return;
    if (this.holds > 0 || this.flowPaused) {
      // Reading is paused; these are the packets that were already parsed from the last chunk.
      (this.waitingPackets ??= []).push(packet);
      return;
    }
    this.broker.metrics['bytes.received'] += packet.length ?? 0;
    this.recvPkt++;
    try {
      this.run(dispatch(this, packet));
    } catch (err) {
      this.failed(err, this.state === 'connecting' && packet.cmd === 'connect');
    }
  }

  /** A handler (or what followed an operation) failed: a protocol violation closes with its reason code. */
  private failed(err: unknown, inConnect: boolean): void {
    if (err instanceof ProtocolViolation) {
      this.log.debug({ clientId: this.clientId, reason: err.message }, 'protocol violation');
      // A bad CONNECT is answered with a CONNACK carrying the reason (§3.2.2.2), then closed.
      if (inConnect) this.send(this.dialect.connack(err.reasonCode, false));
      this.close(err.reasonCode);
    } else {
      this.log.error({ err, clientId: this.clientId }, 'channel error');
      this.close(RC.UNSPECIFIED_ERROR);
    }
  }

  /** Performs a handler's steps, in order. Once the connection is closed only the release of held copies still runs. */
  run(steps: Steps): void {
    if (steps === undefined) return;
    if (!Array.isArray(steps)) return this.step(steps as Step);
    for (const s of steps as readonly Step[]) this.step(s);
  }

  private step(s: Step): void {
    // The hot steps first: a publish, then its acknowledgement.
    if ('publish' in s) {
      if (this.state !== 'closed') this.publish(s);
      return;
    }
    if ('ack' in s) {
      if (this.state === 'connected') this.sendAck(s.ack, s.id, s.rc, s.reason);
      if (s.own) this.outgoing.ownPublishAcknowledged(s.own);
      return;
    }
    if ('release' in s) return this.outgoing.ownPublishAcknowledged(s.release);
    if ('wait' in s) return this.await(s);
    if (this.state === 'closed') return;
    if ('send' in s) return this.send(s.send);
    if ('call' in s) return this.run(s.call());
    if ('refuse' in s) return this.refuse(s.refuse, s.why);
    this.close(s.close);
  }

  /** Runs what follows an operation, as handleIn runs a handler. */
  private continue(next: () => Steps): void {
    try {
      this.run(next());
    } catch (err) {
      this.failed(err, false);
    }
  }

  private await(w: Wait<unknown>): void {
    const after = w.wait.then(
      (v) => {
        if (w.then && (w.always || this.state !== 'closed')) this.continue(() => w.then!(v));
      },
      (err: Error) => {
        if (w.always || this.state !== 'closed') this.continue(() => (w.failed ? w.failed(err) : void this.log.error({ err, clientId: this.clientId }, 'operation failed')));
      },
    );
    if (w.hold) this.hold(after);
  }

  /**
   * Publishes through the broker. Reading pauses while too many publishes await durability, and
   * while flow control is engaged (subscribers of this process are behind).
   */
  private publish(s: Extract<Step, { publish: unknown }>): void {
    const msg = s.publish;
    if (s.own) this.outgoing.ownPublishStarted(msg);
    if (++this.pendingPublishes === MAX_PENDING_PUBLISHES) this.io.pauseReading(ReadPause.Publishes);
    if (this.broker.flow.engaged) this.broker.flow.publisherActive(this);
    const published = this.broker.publish(msg, this);
    if (s.done === undefined && s.failed === undefined && !s.own) return this.awaitShared(published);
    published.then(
      () => {
        this.publishesFinished(1);
        if (s.done) this.continue(s.done);
      },
      (err: Error) => {
        this.publishesFinished(1);
        if (s.own) this.outgoing.ownPublishAcknowledged(msg);
        if (s.failed) return this.continue(() => s.failed!(err));
        // A Kafka stall is logged once per episode by the backbone, not once per message.
        if (backboneStalled(err)) this.broker.metrics['messages.publish.stalled']++;
        else this.log.error({ err, topic: msg.topic }, 'publish failed');
        // Nothing was acknowledged; the client resends after reconnecting.
        this.close(RC.SERVER_UNAVAILABLE);
      },
    );
  }

  /**
   * A publish nothing follows (QoS 0): consecutive ones that share their durable write's promise
   * (Backbone.appendShared) share one continuation, instead of two closures and a promise each.
   */
  private awaitShared(published: Promise<unknown>): void {
    let batch = this.sharedBatch;
    if (published !== this.sharedPublish || batch === undefined) {
      const b = { count: 0 };
      this.sharedPublish = published;
      this.sharedBatch = batch = b;
      const settled = (): void => {
        if (this.sharedBatch === b) this.sharedPublish = this.sharedBatch = undefined;
        this.publishesFinished(b.count);
      };
      published.then(settled, (err: Error) => {
        settled();
        // A Kafka stall is logged once per episode by the backbone, not once per message.
        if (backboneStalled(err)) this.broker.metrics['messages.publish.stalled'] += b.count;
        else this.log.error({ err }, 'publish failed');
        // Nothing to acknowledge at QoS 0; the connection closes as for any failed publish.
        this.close(RC.SERVER_UNAVAILABLE);
      });
    }
    batch.count++;
  }

  private publishesFinished(n: number): void {
    const before = this.pendingPublishes;
    this.pendingPublishes -= n;
    if (before >= MAX_PENDING_PUBLISHES / 2 && this.pendingPublishes < MAX_PENDING_PUBLISHES / 2) this.io.resumeReading(ReadPause.Publishes);
  }

  /** True while the broker works on something later packets must wait for. */
  get waiting(): boolean {
    return this.holds > 0;
  }

  /**
   * Later packets wait until `op` settles (reading pauses; those already parsed are kept in
   * order): opening a session asynchronously, and, scaled out, a subscription change until the
   * router routes with it, so a PUBLISH right behind a SUBSCRIBE reaches that subscription as on
   * a single node. Call after registering the operation's own continuation, which runs first.
   */
  hold(op: Promise<unknown>): void {
    if (this.holds++ === 0) this.io.pauseReading(ReadPause.Hold);
    const release = (): void => {
      if (--this.holds > 0 || this.state === 'closed') return;
      this.io.resumeReading(ReadPause.Hold);
      this.handleWaiting();
    };
    op.then(release, release);
  }

  /** Handles the packets that waited, unless they must wait longer. */
  private handleWaiting(): void {
    if (this.holds > 0 || this.flowPaused) return;
    const waiting = this.waitingPackets;
    this.waitingPackets = undefined;
    // A packet that pauses again sends the rest back to the waiting list, in order.
    if (waiting) for (const p of waiting) this.handleIn(p);
  }

  /** The parser rejected the bytes: malformed packet [MQTT-4.13.1-1]. */
  handleMalformed(reason: string, reasonCode: number = RC.MALFORMED_PACKET): void {
    this.broker.metrics['packets.malformed']++;
    this.log.debug({ clientId: this.clientId, reason }, 'malformed packet');
    this.close(reasonCode);
  }

  /** Keep-alive expired, CONNECT never came, or the credentials expired (a JWT's exp: DISCONNECT 0x87, EMQX's choice). */
  handleTimeout(kind: 'keepalive' | 'connect' | 'credentials'): void {
    if (kind === 'credentials') this.log.info({ clientId: this.clientId }, 'credentials expired; disconnecting');
    this.close(kind === 'keepalive' ? RC.KEEP_ALIVE_TIMEOUT : kind === 'connect' ? RC.MAXIMUM_CONNECT_TIME : RC.NOT_AUTHORIZED);
  }

  /** The transport closed (for any reason). Runs once. */
  handleClosed(): void {
    if (this.state === 'closed' && !this.session) return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.broker.flow.forget(this);
    if (wasConnected) {
      this.broker.metrics['client.disconnected']++;
      this.broker.metrics['connections.count']--;
      // Before the session ends: EMQX's order is client.disconnected, then session.terminated.
      if (this.client) this.broker.hooks.notify('client.disconnected', this.client, this.endReason ?? 'sock_closed', this.disconnectProperties);
    }
    const session = this.session;
    this.session = undefined;
    if (session) {
      this.broker.connectionClosed(session, this, this.will);
      this.will = undefined;
    }
  }

  /** Server-side close: v5 gets a DISCONNECT with the reason first [MQTT-4.13.2-1]. */
  close(reasonCode: number): void {
    if (this.state === 'closed') return;
    this.endReason ??= endReason(reasonCode);
    if (this.state === 'connected') {
      const d = this.dialect.disconnect(reasonCode);
      if (d) this.send(d);
    }
    this.io.end();
    this.handleClosed();
  }

  /** The client sent DISCONNECT. */
  disconnected(): void {
    this.endReason ??= 'normal';
    this.io.end();
    this.handleClosed();
  }

  kick(reasonCode: number): void {
    this.close(reasonCode);
  }

  send(packet: mp.Packet): void {
    const buf = generatePacket(packet, { protocolVersion: this.dialect.version });
    this.broker.metrics['bytes.sent'] += buf.length;
    this.sendPkt++;
    this.sendOct += buf.length;
    this.io.write(buf);
  }

  get writable(): boolean {
    return this.io.writable;
  }

  get progress(): number {
    return this.io.progress;
  }

  /** The socket drained below mqtt.max_send_buffer: what the session holds back goes out. */
  socketDrained(): void {
    this.session?.resume();
  }

  /** Flow control: the packets after this PUBLISH wait (already parsed ones too), and reading pauses. */
  pauseForFlow(): void {
    this.flowPaused = true;
    this.io.pauseReading(ReadPause.Flow);
  }

  resumeForFlow(): void {
    this.flowPaused = false;
    if (this.state === 'closed') return;
    this.io.resumeReading(ReadPause.Flow);
    this.handleWaiting();
  }

  sendPublish(d: Delivery, packetId: number, dup: boolean): boolean {
    const bytes = this.outgoing.publish(d, packetId, dup);
    this.broker.metrics['bytes.sent'] += bytes;
    if (bytes === 0) return false;
    this.sendPkt++;
    this.sendOct += bytes;
    this.sendMsg++;
    if (d.qos === 0) this.sendQos0++;
    else if (d.qos === 1) this.sendQos1++;
    else this.sendQos2++;
    return true;
  }

  /** For Outgoing: bytes to the connection. */
  write(buf: Buffer): void {
    this.io.write(buf);
  }

  sendPubrel(packetId: number): void {
    this.sendAck('pubrel', packetId, RC.SUCCESS);
  }

  /** PUBACK/PUBREC/PUBREL/PUBCOMP; the common Success case skips the generic generator. */
  sendAck(cmd: AckCmd, packetId: number, reasonCode: number, reason?: string): void {
    if (reasonCode !== RC.SUCCESS) return this.send(this.dialect.ack(cmd, packetId, reasonCode, this.problemInformation ? reason : undefined));
    this.broker.metrics['bytes.sent'] += 4;
    this.sendPkt++;
    this.sendOct += 4;
    this.io.write(encodeAck(cmd, packetId));
  }

}

/** EMQX's disconnect reason names for client.disconnected (a socket closed without DISCONNECT is `sock_closed`). */
function endReason(reasonCode: number): string {
  switch (reasonCode) {
    case RC.KEEP_ALIVE_TIMEOUT:
      return 'keepalive_timeout';
    case RC.SESSION_TAKEN_OVER:
      return 'takenover';
    case RC.ADMINISTRATIVE_ACTION:
      return 'kicked';
    case RC.SERVER_SHUTTING_DOWN:
      return 'shutdown';
    case RC.PROTOCOL_ERROR:
    case RC.MALFORMED_PACKET:
      return 'protocol_error';
    default:
      return reasonName(reasonCode);
  }
}
