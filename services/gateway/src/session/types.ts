import type { Message, QoS } from '@tributary/mqtt';
import type { SessionRecord } from '@tributary/records';
import type { SharedGroup, SubscriptionOptions } from '@tributary/router';
import type { PacketProperties } from '@tributary/hooks';
import type { Session } from './session';

/** One message on its way to one subscriber, with the QoS and flags of that delivery. */
export interface Delivery {
  msg: Message;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  /** Set when the message came through a shared subscription (redispatched if unacknowledged). */
  shared?: SharedGroup;
  /** The session's previous connection may have been sent this already: its first PUBLISH carries DUP = 1 (QoS 1/2). */
  maybeSent?: true;
}

/** An outgoing QoS 1/2 message awaiting acknowledgement. phase 1: PUBLISH sent; 2: PUBREL sent. */
export interface Inflight {
  delivery: Delivery;
  packetId: number;
  phase: 1 | 2;
  sentAt: number;
}

/** What a session needs from the connection it is attached to (implemented by the channel). */
export interface SessionOwner {
  readonly protocolVersion: number;
  /** False while the socket holds mqtt.max_send_buffer unsent bytes: nothing more is written until it drains. */
  readonly writable: boolean;
  /** Bytes the socket handed to the OS so far: grows while the client reads. */
  readonly progress: number;
  /** Sends a PUBLISH; false when the client cannot take it (e.g. over its Maximum Packet Size). */
  sendPublish(delivery: Delivery, packetId: number, dup: boolean): boolean;
  sendPubrel(packetId: number): void;
  /** The broker closes this connection (takeover, kick, shutdown) with a v5 reason code. */
  kick(reasonCode: number): void;
}

/** no_local and qos0_msg are hook reasons only (delivery.dropped): not counted in messages.dropped. */
export type DropReason = 'queue_full' | 'expired' | 'too_large' | 'no_session' | 'no_local' | 'qos0_msg';

/** What a session reports back to the broker. */
export interface SessionHost {
  /** The persisted form of the session changed (persistent sessions only). */
  changed(session: { clientId: string }): void;
  dropped(reason: DropReason, delivery: Delivery, session: Session): void;
  delivered(delivery: Delivery, session: Session): void;
  /** The client acknowledged a QoS 1/2 delivery (PUBACK, PUBCOMP). */
  acked(delivery: Delivery, session: Session, props?: PacketProperties): void;
  /** The queue of a connected session passed half its bound with `msg` (true), or drained or left (false). */
  pressure(session: Session, on: boolean, msg?: Message): void;
  /** The session has a backlog in the log and a connection: read it back. */
  backlogged(session: Session): void;
  /** The backlog was read back (or the session ended). */
  backlogEnded(session: Session): void;
  /** The backlog passed mqtt.max_session_backlog: its oldest messages are being dropped. */
  backlogOverflow(session: Session): void;
}

/** A will message (§3.1.2.5) as kept by the session until it fires or is discarded. */
export interface Will {
  message: Message;
  delaySeconds: number;
  /** The publisher's user name, for the message.publish hooks when the will fires. */
  username?: string;
}

/** The persisted state of a session: the sessions table's record (libs/records, io.tributary.v2.Session). */
export type PersistedSession = SessionRecord;

export type { SubscriptionOptions };
