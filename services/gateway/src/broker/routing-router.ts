import type { ConsumedRecord, Consumer } from '@tributary/backbone';
import { decodeMessage, Message, QoS } from '@tributary/mqtt';
import { ACK_HEADER, BUNDLE_HEADER, BundledDelivery, decodeBundle, downlinkTopic, parseAck, parseSharedPicks, RouteAck } from '@tributary/router';
import type { Session } from '../session/session';
import { deliveryFor } from './deliveries';
import type { BrokerCore, RoutingStrategy } from './strategies';

/**
 * A gateway's routing when several share the backbone: the router service routes every published
 * message and writes what matches this gateway's sessions to its own downlink topic, with route
 * acknowledgements between the deliveries; the gateway delivers each to its local sessions with its
 * local subscription table. Publishing here only appends to the messages topic (the core does).
 */
export class RouterServiceRouting implements RoutingStrategy {
  /** Called for each route acknowledgement in the downlink (the leased ownership waits for them). */
  onAck: ((clientId: string, ack: RouteAck) => void) | undefined;
  readonly topic: string;
  private core!: BrokerCore;
  private downlink: Consumer | undefined;
  /** Deliveries for sessions being resumed (delivered after their replay), by client id. */
  private readonly held = new Map<string, [Message, string | undefined][]>();

  /** `gateway`: this gateway's name (node.name), which names its downlink topic. */
  constructor(gateway: string) {
    this.topic = downlinkTopic(gateway);
  }

  async start(core: BrokerCore): Promise<void> {
    this.core = core;
    await core.backbone.ensureTopics([{ name: this.topic, cleanup: 'delete', retentionMs: 3_600_000 }]);
    this.downlink = await core.backbone.consume({ topic: this.topic, from: 'latest', maxBatch: 2000, eachBatch: (records) => this.fromRouter(records) });
    // Other gateways and the retain service write retained messages too: follow their writes.
    core.retained.follow();
  }

  /** The router service routes published messages; this gateway gets them from its downlink. */
  route(): void {}

  async stop(): Promise<void> {
    await this.downlink?.stop();
  }

  /** From now on deliveries to `clientId` are held until `deliverHeld` (its replay runs meanwhile). */
  hold(clientId: string): void {
    this.held.set(clientId, []);
  }

  /** Delivers what was held for `clientId` and stops holding. */
  deliverHeld(clientId: string): void {
    const held = this.held.get(clientId) ?? [];
    this.held.delete(clientId);
    for (const [msg, shared] of held) this.deliverLocal(msg, shared);
  }

  /** Stops holding for `clientId`, dropping what was held (its resume failed or it left). */
  dropHeld(clientId: string): void {
    this.held.delete(clientId);
  }

  /**
   * One batch of this gateway's downlink: route acknowledgements and deliveries. A session that
   * falls behind reads its QoS 1/2 messages back from the messages topic (its backlog) instead
   * of holding up the downlink; while a connected session's queue is filling, reading the
   * downlink waits as the gateway's publishers do (flow control, at most a fraction of a second
   * per session before it is marked slow), so a burst such as a restarted router catching up
   * is delivered rather than sent to the backlog.
   */
  private async fromRouter(records: ConsumedRecord[]): Promise<void> {
    const { log, flow } = this.core;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      const ackHeader = rec.headers[ACK_HEADER];
      if (ackHeader !== undefined) {
        const ack = parseAck(ackHeader);
        if (ack && rec.key !== null) this.onAck?.(rec.key, ack);
        continue;
      }
      if (rec.value === null) continue;
      if (rec.headers[BUNDLE_HEADER] === undefined) {
        log.warn({ offset: rec.offset }, 'downlink record in an unknown format skipped (a router of another version?)');
        continue;
      }
      const deliveries: BundledDelivery[] = [];
      try {
        decodeBundle(rec.value, (d) => deliveries.push(d), rec.headers[BUNDLE_HEADER]);
      } catch (err) {
        log.warn({ offset: rec.offset, err: (err as Error).message }, 'undecodable downlink record: the deliveries before the damage are kept');
      }
      for (const d of deliveries) {
        let msg: Message;
        try {
          msg = decodeMessage(d.value, d.offset);
        } catch (err) {
          log.warn({ offset: d.offset, err: (err as Error).message }, 'undecodable message in a downlink bundle skipped');
          continue;
        }
        // from_username of the delivery events, when the publisher's gateway wrote it.
        if (d.username !== undefined) msg.username = d.username;
        this.deliverLocal(msg, d.shared);
        if (flow.engaged) await flow.whenClear();
      }
    }
  }

  /**
   * Delivers a routed message to the local sessions it matches. A message at or below a
   * session's last offset was delivered already (the router re-routes its last batch after a
   * restart): dropped, so QoS 2 stays exactly once.
   */
  private deliverLocal(msg: Message, sharedHeader: string | undefined): void {
    const core = this.core;
    const offset = msg.offset;
    const picks = sharedHeader === undefined ? undefined : parseSharedPicks(sharedHeader).map(([key, clientId]) => {
      const s = core.session(clientId);
      return { key, session: s, last: s ? s.lastOffset : 0 };
    });
    for (const route of core.router.routes(msg.topic)) {
      const s = core.session(route.clientId);
      if (!s || !this.live(s, msg, sharedHeader) || offset <= s.lastOffset) continue;
      const d = deliveryFor(route, msg);
      if (d) s.deliver(d);
      else core.noLocal(route.clientId, msg);
    }
    if (!picks) return;
    for (const { key, session, last } of picks) {
      const group = core.router.sharedGroups(msg.topic).find((g) => g.key === key);
      const options = session && group?.members.get(session.clientId);
      if (!session || !group || !options) {
        // The picked member left (or unsubscribed) meanwhile: another member here takes it.
        if (group) core.dispatchShared(group, msg);
        continue;
      }
      if (!this.live(session, msg, sharedHeader) || offset <= last) continue;
      const ids = options.subscriptionId !== undefined ? [options.subscriptionId] : undefined;
      session.deliver({ msg, qos: Math.min(msg.qos, options.qos) as QoS, retain: options.retainAsPublished && msg.retain, subscriptionIds: ids, shared: group });
    }
  }

  /** False while the session is being resumed: the message is held and delivered after the replay. */
  private live(session: Session, msg: Message, sharedHeader: string | undefined): boolean {
    const held = this.held.get(session.clientId);
    if (held === undefined) return true;
    if (held[held.length - 1]?.[0] !== msg) {
      // Bounded like the session's queue: the oldest goes first.
      if (held.length >= this.core.limits.maxQueue) {
        held.shift();
        this.core.metrics.dropped('queue_full');
      }
      held.push([msg, sharedHeader]);
    }
    return false;
  }
}
