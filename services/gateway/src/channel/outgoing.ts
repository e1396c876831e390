import type * as mp from 'mqtt-packet';
import { encodePublish, generatePacket, Message, remainingExpiry } from '@tributary/mqtt';
import { utf8Length } from '@tributary/common';
import type { Delivery } from '../session/types';

/** What outgoing PUBLISHes need from their connection. */
export interface OutgoingTarget {
  readonly clientId: string;
  readonly v5: boolean;
  /** The client's Maximum Packet Size (v5), or Infinity. */
  readonly clientMaxPacketSize: number;
  /** The client's Topic Alias Maximum (v5): how many aliases the broker may assign. */
  readonly clientTopicAliasMax: number;
  write(buf: Buffer): void;
}

/**
 * PUBLISHes to one client: encoding (5.0 properties, subscription ids, server→client topic
 * aliases, the client's Maximum Packet Size) and the order of the client's own copies, which
 * wait for the acknowledgement of the publish they are a copy of.
 */
export class Outgoing {
  private aliases: Map<string, number> | undefined;
  /** This client's QoS 1/2 publishes whose acknowledgement is not written yet (see ownPublishStarted). */
  private ownUnacked: Set<Message> | undefined;
  /** Encoded PUBLISHes waiting behind the client's own copy of a message not yet acknowledged. */
  private heldOut: { buf: Buffer; wait: Message | undefined }[] | undefined;

  constructor(private readonly target: OutgoingTarget) {}

  /** Encodes and writes (or holds) a PUBLISH; false when it is over the client's Maximum Packet Size. Returns the bytes written. */
  publish(d: Delivery, packetId: number, dup: boolean): number {
    const msg = d.msg;
    const t = this.target;
    if (!t.v5 || (!msg.properties && !d.subscriptionIds && t.clientTopicAliasMax === 0)) {
      return this.writeLimited(encodePublish(msg.topic, utf8Length(msg.topic), msg.payload, d.qos, d.retain, dup, packetId, t.v5), msg);
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
    if (t.clientTopicAliasMax > 0) {
      // Server→client topic aliases, up to the client's Topic Alias Maximum [MQTT-3.3.2-9]:
      // the first PUBLISH on a topic carries topic + alias, later ones only the alias.
      const aliases = (this.aliases ??= new Map());
      const known = aliases.get(topic);
      if (known !== undefined) {
        props.topicAlias = known;
        topic = '';
      } else if (aliases.size < t.clientTopicAliasMax) {
        props.topicAlias = aliases.size + 1;
        aliases.set(topic, props.topicAlias);
      }
    }
    const packet: mp.IPublishPacket = { cmd: 'publish', topic, payload: msg.payload, qos: d.qos, retain: d.retain, dup, messageId: packetId || undefined, properties: props };
    return this.writeLimited(generatePacket(packet, { protocolVersion: 5 }), msg);
  }

  private writeLimited(buf: Buffer, msg: Message): number {
    // A packet over the client's Maximum Packet Size is dropped, never sent [MQTT-3.1.2-24].
    if (buf.length > this.target.clientMaxPacketSize) return 0;
    // The client's own copy of a message waits for that publish's PUBACK/PUBREC; later ones
    // wait behind it, so the order of messages is kept (see ownPublishStarted()).
    const wait = msg.from === this.target.clientId ? this.unackedOriginal(msg) : undefined;
    if (this.heldOut !== undefined || wait !== undefined) (this.heldOut ??= []).push({ buf, wait });
    else this.target.write(buf);
    return buf.length;
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
    while (i < held.length && (held[i]!.wait === undefined || !own.has(held[i]!.wait!))) this.target.write(held[i++]!.buf);
    if (i === held.length) this.heldOut = undefined;
    else held.splice(0, i);
  }
}
