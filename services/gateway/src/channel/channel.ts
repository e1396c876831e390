import type * as mp from 'mqtt-packet';
import type { Logger } from '@tributary/common';
import type { GatewayConfig } from '../config';
import { encodeAck, encodePublish, generatePacket, Message, Packet, RC, remainingExpiry } from '@tributary/mqtt';
import type { Broker } from '../broker/broker';
import type { Session } from '../session/session';
import type { Delivery, SessionOwner, Will } from '../session/types';
import { AuthExchange, handleAuth } from './handlers/auth';
import { handleConnect } from './handlers/connect';
import { handleDisconnect } from './handlers/disconnect';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './handlers/acks';
import { handlePublish } from './handlers/publish';
import { handleSubscribe, handleUnsubscribe } from './handlers/subscribe';
import { checkProperties } from './properties';
import type { Pausable } from '../broker/flow';
import { Dialect, dialectFor, ProtocolViolation } from './protocol';

/** Why reading a connection is paused; it reads again once no reason is left. */
export const enum ReadPause {
  /** Too many of its publishes await durability. */
  Publishes = 1,
  /** A broker operation later packets must wait for (Channel.hold). */
  Hold = 2,
  /** Flow control: subscribers of this process are behind. */
  Flow = 4,
}

/** What a channel needs from its connection: bytes out, close, timers and read pausing. */
export interface ChannelIO {
  readonly remoteAddress: string;
  /** False while the socket holds mqtt.max_send_buffer unsent bytes. */
  readonly writable: boolean;
  /** Bytes handed to the OS so far. */
  readonly progress: number;
  write(data: Buffer): void;
  /** Flushes what was written and closes the connection. */
  end(): void;
  /** Keep-alive in seconds (0 = none); the connection enforces 1.5× (configurable). */
  setKeepAlive(seconds: number): void;
  /** Tells the parser which protocol version later packets use. */
  setProtocolVersion(version: number): void;
  pauseReading(reason: ReadPause): void;
  resumeReading(reason: ReadPause): void;
}

export type ChannelState = 'connecting' | 'connected' | 'closed';

/** Pause reading a client's socket while this many of its publishes await durability. */
const MAX_PENDING_PUBLISHES = 1000;

/**
 * The per-connection MQTT state machine. Packets come in through `handleIn`, replies go out
 * through the ChannelIO; publishing, sessions and routing are the broker's. It never touches a
 * socket, so it can be tested over an in-memory ChannelIO.
 */
export class Channel implements SessionOwner, Pausable {
  state: ChannelState = 'connecting';
  dialect: Dialect = dialectFor(4);
  clientId = '';
  username: string | undefined;
  session: Session | undefined;
  will: Will | undefined;
  keepalive = 0;
  /** Session expiry requested at CONNECT (seconds); DISCONNECT may change it. */
  expiryInterval = 0;
  /** The client's Maximum Packet Size (v5), or Infinity. */
  clientMaxPacketSize = Infinity;
  /** An enhanced-authentication exchange in progress. */
  auth: AuthExchange | undefined;
  /** The Authentication Method the client authenticated with (v5), for re-authentication. */
  authMethod: string | undefined;
  private _topicAliases: Map<number, string> | undefined;
  /** The client's Topic Alias Maximum (v5): how many aliases the broker may assign. */
  clientTopicAliasMax = 0;
  private outAliases: Map<string, number> | undefined;
  private _qos2InProgress: Set<number> | undefined;
  /** Incoming QoS 1/2 publishes not yet acknowledged (durability pending). */
  unacked = 0;
  private pendingPublishes = 0;
  /** Broker operations later packets must wait for (see hold()). */
  private holds = 0;
  /** Packets parsed while later packets must wait (a hold, or flow control's pause), in order. */
  private waitingPackets: Packet[] | undefined;
  private flowPaused = false;
  /** This client's QoS 1/2 publishes whose acknowledgement is not written yet (see ownPublishStarted). */
  private ownUnacked: Set<Message> | undefined;
  /** Encoded PUBLISHes waiting behind the client's own copy of a message not yet acknowledged. */
  private heldOut: { buf: Buffer; wait: Message | undefined }[] | undefined;

  constructor(
    readonly io: ChannelIO,
    readonly broker: Broker,
    readonly config: GatewayConfig,
    readonly log: Logger,
  ) {}

  /** Client→server topic aliases (v5); created on first use, as most connections never alias. */
  get topicAliases(): Map<number, string> {
    return (this._topicAliases ??= new Map());
  }

  /** Incoming QoS 2 packet ids whose publish is still being made durable. */
  get qos2InProgress(): Set<number> {
    return (this._qos2InProgress ??= new Set());
  }

  get protocolVersion(): number {
    return this.dialect.version;
  }

  /** Dispatches one incoming packet; connect-state rules live here, per-packet logic in handlers. */
  handleIn(packet: Packet): void {
    if (this.state === 'closed') return;
    if (this.holds > 0 || this.flowPaused) {
      // Reading is paused; these are the packets that were already parsed from the last chunk.
      (this.waitingPackets ??= []).push(packet);
      return;
    }
    this.broker.metrics['bytes.received'] += packet.length ?? 0;
    try {
      if (this.state === 'connecting') {
        // During enhanced authentication only AUTH may come (§4.12).
        if (this.auth) {
          if (packet.cmd !== 'auth') throw new ProtocolViolation(RC.PROTOCOL_ERROR, `${packet.cmd} during authentication`);
          checkProperties(packet);
          return handleAuth(this, packet);
        }
        // The first packet must be CONNECT [MQTT-3.1.0-1].
        if (packet.cmd !== 'connect') throw new ProtocolViolation(RC.PROTOCOL_ERROR, `${packet.cmd} before CONNECT`);
        if (packet.protocolVersion === 5) {
          this.dialect = dialectFor(5);
          this.io.setProtocolVersion(5);
          checkProperties(packet);
        }
        handleConnect(this, packet);
        return;
      }
      if (this.dialect.v5 && (packet as { properties?: unknown }).properties) checkProperties(packet);
      switch (packet.cmd) {
        case 'publish':
          return handlePublish(this, packet);
        case 'puback':
          return handlePuback(this, packet);
        case 'pubrec':
          return handlePubrec(this, packet);
        case 'pubrel':
          return handlePubrel(this, packet);
        case 'pubcomp':
          return handlePubcomp(this, packet);
        case 'subscribe':
          return handleSubscribe(this, packet);
        case 'unsubscribe':
          return handleUnsubscribe(this, packet);
        case 'pingreq':
          return this.send({ cmd: 'pingresp' });
        case 'disconnect':
          return handleDisconnect(this, packet);
        case 'connect':
          // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
          throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'second CONNECT');
        case 'auth':
          if (!this.authMethod) throw new ProtocolViolation(RC.PROTOCOL_ERROR, 'AUTH without an authentication method');
          return handleAuth(this, packet);
        default:
          // Server-to-client packets (CONNACK, SUBACK, ...) are never valid from a client.
          throw new ProtocolViolation(RC.PROTOCOL_ERROR, `unexpected ${packet.cmd} from a client`);
      }
    } catch (err) {
      if (err instanceof ProtocolViolation) {
        this.log.debug({ clientId: this.clientId, reason: err.message }, 'protocol violation');
        // A bad CONNECT is answered with a CONNACK carrying the reason (§3.2.2.2), then closed.
        if (this.state === 'connecting' && packet.cmd === 'connect') this.send(this.dialect.connack(err.reasonCode, false));
        this.close(err.reasonCode);
      } else {
        this.log.error({ err, clientId: this.clientId }, 'channel error');
        this.close(RC.UNSPECIFIED_ERROR);
      }
    }
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

  /** Keep-alive expired or CONNECT never came. */
  handleTimeout(kind: 'keepalive' | 'connect'): void {
    this.close(kind === 'keepalive' ? RC.KEEP_ALIVE_TIMEOUT : RC.MAXIMUM_CONNECT_TIME);
  }

  /** The transport closed (for any reason). Runs once. */
  handleClosed(): void {
    if (this.state === 'closed' && !this.session) return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.broker.flow.forget(this);
    const session = this.session;
    this.session = undefined;
    if (session) {
      this.broker.connectionClosed(session, this, this.will);
      this.will = undefined;
    }
    if (wasConnected) {
      this.broker.metrics['client.disconnected']++;
      this.broker.metrics['connections.count']--;
      if (this.config.sys_topics.sys_event_messages.client_disconnected) {
        this.broker.sys?.clientEvent('disconnected', {
          clientid: this.clientId,
          username: this.username ?? null,
          ipaddress: this.io.remoteAddress.replace(/:\d+$/, ''),
          proto_ver: this.dialect.version,
          disconnected_at: Date.now(),
        });
      }
    }
  }

  /** Server-side close: v5 gets a DISCONNECT with the reason first [MQTT-4.13.2-1]. */
  close(reasonCode: number): void {
    if (this.state === 'closed') return;
    if (this.state === 'connected') {
      const d = this.dialect.disconnect(reasonCode);
      if (d) this.send(d);
    }
    this.io.end();
    this.handleClosed();
  }

  kick(reasonCode: number): void {
    this.close(reasonCode);
  }

  send(packet: mp.Packet): void {
    const buf = generatePacket(packet, { protocolVersion: this.dialect.version });
    this.broker.metrics['bytes.sent'] += buf.length;
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
    const msg = d.msg;
    const v5 = this.dialect.v5;
    if (!v5 || (!msg.properties && !d.subscriptionIds && this.clientTopicAliasMax === 0)) {
      return this.writeLimited(encodePublish(msg.topic, Buffer.byteLength(msg.topic), msg.payload, d.qos, d.retain, dup, packetId, v5), msg);
    }
    const p = msg.properties;
    const ids = d.subscriptionIds;
    const { payloadFormatIndicator: pfi, ...rest } = p ?? {};
    const props: mp.IPublishPacket['properties'] = rest;
    // mqtt-packet writes a one-byte property from a boolean: 1 is true, 0 false (the byte the publisher sent).
    if (pfi !== undefined) props.payloadFormatIndicator = pfi === 1;
    if (p?.messageExpiryInterval !== undefined) props.messageExpiryInterval = Math.max(1, remainingExpiry(msg, Date.now()) ?? 0);
    if (ids) props.subscriptionIdentifier = ids.length === 1 ? ids[0]! : ids;
    let topic = msg.topic;
    if (this.clientTopicAliasMax > 0) {
      // Server→client topic aliases, up to the client's Topic Alias Maximum [MQTT-3.3.2-9]:
      // the first PUBLISH on a topic carries topic + alias, later ones only the alias.
      const aliases = (this.outAliases ??= new Map());
      const known = aliases.get(topic);
      if (known !== undefined) {
        props.topicAlias = known;
        topic = '';
      } else if (aliases.size < this.clientTopicAliasMax) {
        props.topicAlias = aliases.size + 1;
        aliases.set(topic, props.topicAlias);
      }
    }
    const packet: mp.IPublishPacket = { cmd: 'publish', topic, payload: msg.payload, qos: d.qos, retain: d.retain, dup, messageId: packetId || undefined, properties: props };
    return this.writeLimited(generatePacket(packet, { protocolVersion: 5 }), msg);
  }

  private writeLimited(buf: Buffer, msg: Message): boolean {
    // A packet over the client's Maximum Packet Size is dropped, never sent [MQTT-3.1.2-24].
    if (buf.length > this.clientMaxPacketSize) return false;
    this.broker.metrics['bytes.sent'] += buf.length;
    // The client's own copy of a message waits for that publish's PUBACK/PUBREC; later ones
    // wait behind it, so the order of messages is kept (see ownPublishStarted()).
    const wait = msg.from === this.clientId ? this.unackedOriginal(msg) : undefined;
    if (this.heldOut !== undefined || wait !== undefined) {
      (this.heldOut ??= []).push({ buf, wait });
      return true;
    }
    this.io.write(buf);
    return true;
  }

  /**
   * This client's publish not yet acknowledged that `msg` is a copy of: the same object on a
   * single node; scaled out, a copy decoded from the downlink, which the router may deliver
   * before the produce response arrives (same topic and timestamp; the newest such, so that a
   * copy never goes out before its own acknowledgement).
   */
  private unackedOriginal(msg: Message): Message | undefined {
    const own = this.ownUnacked;
    if (own === undefined || own.size === 0) return undefined;
    if (own.has(msg)) return msg;
    let found: Message | undefined;
    for (const m of own) if (m.timestamp === msg.timestamp && m.topic === msg.topic) found = m;
    return found;
  }

  /**
   * A QoS 1/2 publish of this client that may come back to it (it has subscriptions) is about
   * to be published: its own copy is held until its acknowledgement was written (the embedded
   * backbone routes before the write is durable, the acknowledgement waits for it).
   */
  ownPublishStarted(msg: Message): void {
    (this.ownUnacked ??= new Set()).add(msg);
  }

  /** The acknowledgement of `msg` was written (or will never be): release what waited for it. */
  ownPublishAcknowledged(msg: Message): void {
    const own = this.ownUnacked;
    if (own === undefined || !own.delete(msg)) return;
    const held = this.heldOut;
    if (held === undefined) return;
    let i = 0;
    while (i < held.length && (held[i]!.wait === undefined || !own.has(held[i]!.wait!))) this.io.write(held[i++]!.buf);
    if (i === held.length) this.heldOut = undefined;
    else held.splice(0, i);
  }

  sendPubrel(packetId: number): void {
    this.sendAck('pubrel', packetId, RC.SUCCESS);
  }

  /** PUBACK/PUBREC/PUBREL/PUBCOMP; the common Success case skips the generic generator. */
  sendAck(cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', packetId: number, reasonCode: number): void {
    if (reasonCode !== RC.SUCCESS) return this.send(this.dialect.ack(cmd, packetId, reasonCode));
    this.broker.metrics['bytes.sent'] += 4;
    this.io.write(encodeAck(cmd, packetId));
  }

  /**
   * Tracks publishes awaiting durability; reading pauses while too many are pending, and while
   * flow control is engaged (subscribers of this process are behind).
   */
  publishStarted(): void {
    if (++this.pendingPublishes === MAX_PENDING_PUBLISHES) this.io.pauseReading(ReadPause.Publishes);
    if (this.broker.flow.engaged) this.broker.flow.publisherActive(this);
  }

  publishFinished(): void {
    if (this.pendingPublishes-- === MAX_PENDING_PUBLISHES / 2) this.io.resumeReading(ReadPause.Publishes);
  }
}
