import { QoS, RC } from '@tributary/mqtt';

/** What to do with an incoming QoS 1/2 PUBLISH (IncomingWindow.begin). */
export type IncomingVerdict =
  /** Publish it. */
  | 'publish'
  /** A QoS 2 resend while the first copy is still being stored: nothing to do. */
  | 'skip'
  /** A QoS 2 resend of a stored message: PUBREC again without publishing twice [MQTT-4.3.3-9]. */
  | 'acknowledge'
  /** Past a limit: a protocol violation with this reason code (0x93 Receive Maximum exceeded). */
  | typeof RC.RECEIVE_MAXIMUM_EXCEEDED;

/**
 * The session's incoming QoS 1/2 state and its protocol limits: the broker's Receive Maximum
 * (5.0: QoS 1/2 PUBLISHes not yet acknowledged, QoS 2 until PUBCOMP [MQTT-3.3.4-7], §4.9) and
 * `mqtt.max_awaiting_rel` (QoS 2 ids PUBREC'd and awaiting PUBREL, kept with the session).
 */
export class IncomingWindow {
  /** QoS 1/2 PUBLISHes of this connection that count against the Receive Maximum. */
  private unacked = 0;
  private receiveMaximum = Infinity;
  /** QoS 2 ids whose publish is still being made durable. */
  private inProgress: Set<number> | undefined;
  private _awaitingRel: Set<number> | undefined;

  constructor(private readonly maxAwaitingRel: number) {}

  /** Incoming QoS 2 packet ids PUBREC'd and awaiting PUBREL (persisted with the session). */
  get awaitingRel(): Set<number> {
    return (this._awaitingRel ??= new Set());
  }

  get awaitingRelCount(): number {
    return this._awaitingRel?.size ?? 0;
  }

  /** The ids awaiting PUBREL, in order (a copy; creates nothing when there are none). */
  awaitingRelIds(): number[] {
    return this._awaitingRel ? [...this._awaitingRel] : [];
  }

  /** A new connection: its own Receive Maximum count (Infinity where the protocol has none: 3.x). */
  connected(receiveMaximum: number): void {
    this.unacked = 0;
    this.receiveMaximum = receiveMaximum;
  }

  begin(qos: Exclude<QoS, 0>, id: number): IncomingVerdict {
    if (qos === 2) {
      if (this.inProgress?.has(id)) return 'skip';
      if (this._awaitingRel?.has(id)) return 'acknowledge';
      if (this.awaitingRelCount >= this.maxAwaitingRel) return RC.RECEIVE_MAXIMUM_EXCEEDED;
    }
    // The client sent more unacknowledged QoS 1/2 PUBLISHes than our Receive Maximum [MQTT-3.3.4-9].
    if (this.unacked >= this.receiveMaximum) return RC.RECEIVE_MAXIMUM_EXCEEDED;
    this.unacked++;
    if (qos === 2) (this.inProgress ??= new Set()).add(id);
    return 'publish';
  }

  /** The publish is durable: QoS 1 is acknowledged now; QoS 2 awaits its PUBREL (and keeps counting until PUBCOMP). */
  stored(qos: Exclude<QoS, 0>, id: number): void {
    if (qos === 1) {
      if (this.unacked > 0) this.unacked--;
      return;
    }
    this.inProgress?.delete(id);
    this.awaitingRel.add(id);
  }

  /** The publish failed (the connection closes; the client resends it). */
  failed(qos: Exclude<QoS, 0>, id: number): void {
    if (this.unacked > 0) this.unacked--;
    if (qos === 2) this.inProgress?.delete(id);
  }

  /** PUBREL: true when the id awaited it (answered with PUBCOMP 0x00, else 0x92). */
  release(id: number): boolean {
    const known = this._awaitingRel?.delete(id) ?? false;
    if (known && this.unacked > 0) this.unacked--;
    return known;
  }

  clear(): void {
    this._awaitingRel = undefined;
    this.inProgress = undefined;
  }
}
