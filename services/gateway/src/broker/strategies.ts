import type { Backbone } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import type { ClientInfo, HookRegistry } from '@tributary/hooks';
import type { Message } from '@tributary/mqtt';
import type { Router, SharedGroup } from '@tributary/router';
import type { Session, SessionLimits } from '../session/session';
import type { SessionStore } from '../session/store';
import type { PersistedSession, SessionOwner, Will } from '../session/types';
import type { FlowControl } from './flow';
import type { Metrics } from './metrics';
import type { RetainedStore } from './retained';

/*
 * One Broker serves both deployments; what differs between the single node and a gateway among
 * several is injected as two strategies (chosen by the node's role, services/cli/src/node.ts):
 * where a published message is routed (RoutingStrategy) and who owns a session (OwnershipStrategy).
 */

/** The backbone topic every published message is appended to: the broker's log, read by replays and backlogs. */
export const MESSAGES_TOPIC = 'messages';

export interface OpenSessionRequest {
  clientId: string;
  protocolVersion: number;
  cleanStart: boolean;
  /** Seconds (0 = the session ends with the connection). */
  expiryInterval: number;
  /** The client's Receive Maximum (65535 when absent). */
  receiveMaximum: number;
  /** The will, kept with the session record so another service can publish it if this process dies. */
  will?: Will;
  /** Who connects, for the session.* hooks. */
  client: ClientInfo;
}

export interface OpenedSession {
  session: Session;
  /** Session Present in CONNACK. */
  present: boolean;
}

/**
 * What the strategies may use of the broker: its parts and the few session-registry operations
 * they build on. The core keeps the registry, publish pipeline, retain, wills, expiry and flow control.
 */
export interface BrokerCore {
  readonly backbone: Backbone;
  readonly store: SessionStore;
  readonly retained: RetainedStore;
  readonly router: Router;
  readonly metrics: Metrics;
  readonly hooks: HookRegistry;
  readonly flow: FlowControl;
  readonly log: Logger;
  readonly limits: SessionLimits;
  session(clientId: string): Session | undefined;
  /** Registers a new, empty session for `clientId` (replacing any in the registry). */
  newSession(clientId: string, protocolVersion: number): Session;
  /** Creates, resumes or takes over a session in this process (kicking a local owner with 0x8E). */
  openHere(req: OpenSessionRequest): OpenedSession;
  /** A connection ended, seen from this process only: detach (expiry later) or discard; schedule the will. */
  closeHere(session: Session, owner: SessionOwner, will: Will | undefined): void;
  /** Hands `msg` to one member of a shared-subscription group (preferring connected ones). */
  dispatchShared(group: SharedGroup, msg: Message, exclude?: string): void;
  /** Counts a message nobody gets and tells message.dropped. */
  messageDropped(msg: Message, reason: 'no_subscribers' | 'invalid_topic'): void;
  /** A No Local subscription of `clientId` skipped its own message (delivery.dropped no_local). */
  noLocal(clientId: string, msg: Message): void;
  /** Ends a session in this process only: its routes, state and timers go; its stored record stays. */
  forget(session: Session): void;
  scheduleExpiry(session: Session): void;
  /** Saves a persistent session now (unless ended, or owned elsewhere); resolves when durable. */
  persist(session: Session): Promise<void>;
  /** Publishes a will now. */
  publishWill(will: Will): void;
}

/** Where published messages are routed to sessions. */
export interface RoutingStrategy {
  start(core: BrokerCore): Promise<void>;
  /** A message was appended to the messages topic (its offset known): deliver it to whoever it matches. */
  route(msg: Message): void;
  stop(): Promise<void>;
}

/** Who owns a session, where it is restored and what its stored record carries. */
export interface OwnershipStrategy {
  /** Before the add-ons start; the core has its parts but no sessions yet. */
  start(core: BrokerCore): Promise<void>;
  /** Creates or resumes a connecting client's session (the caller attaches after CONNACK). */
  open(req: OpenSessionRequest): OpenedSession | Promise<OpenedSession>;
  /** Before SUBACK/UNSUBACK: what to wait for (undefined: nothing). */
  confirmSubscriptions(session: Session): Promise<void> | undefined;
  /** What is stored for a session. */
  record(session: Session): PersistedSession;
  /** False once another process owns the session: this one must not write its record again. */
  mayWrite(session: Session): boolean;
  /** A connection of `session` ended. */
  connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void;
  /** The session ended and its record is being removed (clean start, expiry, end of a non-persistent session). */
  discarded(session: Session): void;
  /** After the core saved every session. */
  stop(): Promise<void>;
}
