import type { Backbone, ConsumedRecord, ProducerRecord } from '@tributary/backbone';
import type { Logger, Service } from '@tributary/common';
import type { HookRegistry, HookSignatures, NotifyPoint } from '@tributary/hooks';
import { SCHEMA_HEADER } from '@tributary/mqtt';
import { EVENT_V1, eventCodec, eventHeaders, EventRecord, EVENTS_TOPIC } from '@tributary/records';
import { authnComplete, authzComplete, clientConnack, clientConnected, clientDisconnected, delivery, EventColumnsOf, messageDropped, printableProps, subscription } from './columns';
import type { ValueMap } from '@tributary/rulesql';

export { EVENTS_TOPIC } from '@tributary/records';
export { messageColumns, messageId, printableProps } from './columns';

/** Which `$events/...` sources some rule selects from; `onChange` is called whenever that may have changed. */
export interface EventInterest {
  wants(source: string): boolean;
  onChange(cb: () => void): void;
}

export interface EventsServiceOptions {
  hooks: HookRegistry;
  backbone: Backbone;
  /** node.name: every event's `node` column. */
  node: string;
  interest: EventInterest;
  log: Logger;
  /** Most events held at once: this turn's batch plus appends not yet durable (default 10 000). */
  maxPending?: number;
  /** Services to start first (default none); the host must know them. */
  dependsOn?: readonly string[];
}

/** One `$events/...` source: the hook point it comes from and how its columns are made. */
interface SourceSpec {
  readonly source: string;
  /** EMQX's event name: `$events/client_connected` is `client.connected`. */
  readonly event: string;
  readonly point: NotifyPoint;
  readonly build: (...args: never[]) => EventColumnsOf;
}

function spec<P extends NotifyPoint>(source: string, point: P, build: (...args: Parameters<HookSignatures[P]>) => EventColumnsOf): SourceSpec {
  // client_check_authn_complete → client.check_authn_complete: the first underscore is EMQX's dot.
  const name = source.slice('$events/'.length);
  const dot = name.indexOf('_');
  return { source, event: `${name.slice(0, dot)}.${name.slice(dot + 1)}`, point, build: build as unknown as SourceSpec['build'] };
}

const SPECS: readonly SourceSpec[] = [
  spec('$events/client_connected', 'client.connected', (c) => clientConnected(c)),
  spec('$events/client_disconnected', 'client.disconnected', (c, reason, props) => clientDisconnected(c, reason, props, Date.now())),
  spec('$events/client_connack', 'client.connack', (c, rc) => clientConnack(c, rc)),
  spec('$events/client_check_authn_complete', 'client.check_authn_complete', (c, r) => authnComplete(c, r)),
  spec('$events/client_check_authz_complete', 'client.check_authz_complete', (c, req, result, source) => authzComplete(c, req, result, source)),
  spec('$events/session_subscribed', 'session.subscribed', (c, filter, options, props) => subscription(c, filter, options, props, 'sub_props')),
  spec('$events/session_unsubscribed', 'session.unsubscribed', (c, filter, options, props) => subscription(c, filter, options, props, 'unsub_props')),
  spec('$events/message_delivered', 'message.delivered', (c, m) => delivery(c, m, {})),
  spec('$events/message_acked', 'message.acked', (c, m, props) => delivery(c, m, { puback_props: printableProps(props) })),
  spec('$events/message_dropped', 'message.dropped', (m, reason) => messageDropped(m, reason)),
  spec('$events/delivery_dropped', 'delivery.dropped', (c, m, reason) => delivery(c, m, { reason })),
];

/** The `$events/...` sources rules may select from (EMQX 5's names), in one list. */
export const EVENT_SOURCES: readonly string[] = SPECS.map((s) => s.source);

const SOURCE_OF_EVENT = new Map(SPECS.map((s) => [s.event, s.source]));

/** Counters of what EventsService did; `events.dropped` are events refused while maxPending were held. */
export interface EventsCounters {
  'events.appended': number;
  'events.dropped': number;
  /** Events whose append failed (or that could not be encoded): lost. */
  'events.failed': number;
}

/**
 * Client, session and message events as records of the backbone's `events` topic
 * (io.tributary.v1.Event, libs/records), so the rule engine's `$events/...` sources and any
 * Kafka consumer outside Tributary read the same thing. It listens on a hook point only while
 * `interest` wants the point's source, and re-checks on every `onChange`: with no rule
 * interested nothing is registered, so the broker builds no hook arguments and the per-message
 * points cost what an unused hook costs (one map lookup).
 *
 * Events are gathered per event-loop turn and appended in one call (key = clientid). Drop
 * policy: at most `maxPending` events are held (the batch being gathered plus appends not yet
 * durable); beyond that a new event is dropped, newest first (counted in `events.dropped`,
 * logged once per episode), so a slow or unavailable backbone never holds the broker back nor
 * grows memory. A failed append is logged and its events counted in `events.failed`; events are
 * not retried. Run it in every process whose hooks fire the events (gateways; scaled out, the
 * router for message_dropped no_subscribers).
 */
export class EventsService implements Service {
  readonly name = 'events';
  readonly dependsOn: readonly string[];
  readonly counters: EventsCounters = { 'events.appended': 0, 'events.dropped': 0, 'events.failed': 0 };
  private readonly removers = new Map<string, () => void>();
  private readonly maxPending: number;
  private batch: EventRecord[] = [];
  /** Events in appends that have not settled yet. */
  private inflight = 0;
  private readonly appends = new Set<Promise<void>>();
  private scheduled = false;
  private running = false;
  private listening = false;
  /** In a drop episode (logged at its start). */
  private dropping = false;

  constructor(private readonly opts: EventsServiceOptions) {
    this.maxPending = opts.maxPending ?? 10_000;
    this.dependsOn = opts.dependsOn ?? [];
  }

  async start(): Promise<void> {
    await this.opts.backbone.ensureTopics([{ name: EVENTS_TOPIC, cleanup: 'delete' }]);
    this.running = true;
    if (!this.listening) {
      this.listening = true;
      this.opts.interest.onChange(() => this.sync());
    }
    this.sync();
  }

  /** Stops listening, appends what was gathered and waits for every append to settle. */
  async stop(): Promise<void> {
    this.running = false;
    this.sync();
    this.flush();
    await Promise.all([...this.appends]);
  }

  /** The sources listened to now (those interest wants). */
  get listened(): string[] {
    return [...this.removers.keys()];
  }

  /** Registers the hooks of the sources interest wants now, removes the others. */
  private sync(): void {
    for (const s of SPECS) {
      const want = this.running && this.opts.interest.wants(s.source);
      const remove = this.removers.get(s.source);
      if (want && !remove) this.removers.set(s.source, this.listen(s));
      else if (!want && remove) {
        remove();
        this.removers.delete(s.source);
      }
    }
  }

  private listen(s: SourceSpec): () => void {
    const fn = (...args: never[]): void => {
      if (this.batch.length + this.inflight >= this.maxPending) return this.drop();
      const now = Date.now();
      const { clientid, username, columns } = s.build(...args);
      this.batch.push({ event: s.event, timestamp: now, node: this.opts.node, clientid, username, columns });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    };
    return this.opts.hooks.add(s.point, { name: 'rules.events', priority: 'rules' }, fn as unknown as HookSignatures[typeof s.point]);
  }

  private drop(): void {
    this.counters['events.dropped']++;
    if (this.dropping) return;
    this.dropping = true;
    this.opts.log.warn({ maxPending: this.maxPending, topic: EVENTS_TOPIC }, 'events backlog full: new events are dropped until appends catch up');
  }

  /** Appends this turn's events in one call. */
  private flush(): void {
    this.scheduled = false;
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    const records: ProducerRecord[] = [];
    for (const e of batch) {
      try {
        records.push({ key: e.clientid ?? null, value: eventCodec.encode(e), headers: eventHeaders(e.event), timestamp: e.timestamp });
      } catch (err) {
        this.counters['events.failed']++;
        this.opts.log.warn({ err: (err as Error).message, event: e.event }, 'event could not be encoded; skipped');
      }
    }
    if (records.length === 0) return;
    const n = records.length;
    this.inflight += n;
    const p = this.opts.backbone.append(EVENTS_TOPIC, records).then(
      () => {
        this.counters['events.appended'] += n;
      },
      (err: unknown) => {
        this.counters['events.failed'] += n;
        this.opts.log.warn({ err: (err as Error).message, events: n, topic: EVENTS_TOPIC }, 'events append failed; those events are lost');
      },
    );
    this.appends.add(p);
    void p.finally(() => {
      this.appends.delete(p);
      this.inflight -= n;
      if (this.dropping && this.batch.length + this.inflight < this.maxPending / 2) {
        this.dropping = false;
        this.opts.log.info({ dropped: this.counters['events.dropped'] }, 'events backlog drained');
      }
    });
  }
}

/** Records of the events topic that decodeEvent could not read (any schema but io.tributary.v1.Event, a bad value, an unknown event). */
export const eventDecodeStats = { undecodable: 0 };

/**
 * An events-topic record as a rule's source and columns: `$events/client_connected` and
 * exactly the columns EventsService recorded (event, timestamp, node, clientid, username with
 * the rest). Undefined, and counted in eventDecodeStats, for a record it cannot read.
 */
export function decodeEvent(record: ConsumedRecord): { source: string; columns: ValueMap } | undefined {
  const schema = record.headers[SCHEMA_HEADER];
  if (record.value === null || (schema !== undefined && schema !== EVENT_V1)) return undecodable();
  let e: EventRecord;
  try {
    e = eventCodec.decode(record.value);
  } catch {
    return undecodable();
  }
  const source = SOURCE_OF_EVENT.get(e.event);
  if (source === undefined) return undecodable();
  const columns: ValueMap = { ...e.columns, event: e.event, timestamp: e.timestamp, node: e.node };
  if (e.clientid !== undefined) columns.clientid = e.clientid;
  if (e.username !== undefined) columns.username = e.username;
  return { source, columns };
}

function undecodable(): undefined {
  eventDecodeStats.undecodable++;
  return undefined;
}
