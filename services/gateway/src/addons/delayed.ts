import { randomBytes } from 'node:crypto';
import type { Backbone, Table } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { encodeMessage, Message } from '@tributary/mqtt';
import { messageCodec, RecordReader } from '@tributary/records';
import { brokerMessage, type HookRegistry } from '@tributary/hooks';

export const DELAYED_PREFIX = '$delayed/';
const MAX_DELAY_SECONDS = 4_294_967;

/** Parses `$delayed/<seconds>/<topic>`; undefined when the topic is not a valid delayed topic. */
export function parseDelayed(topic: string): { seconds: number; topic: string } | undefined {
  const slash = topic.indexOf('/', DELAYED_PREFIX.length);
  if (slash < 0) return undefined;
  const digits = topic.slice(DELAYED_PREFIX.length, slash);
  const rest = topic.slice(slash + 1);
  if (!/^\d{1,7}$/.test(digits) || rest.length === 0) return undefined;
  const seconds = Number(digits);
  return seconds <= MAX_DELAY_SECONDS ? { seconds, topic: rest } : undefined;
}

/**
 * Delayed publish (`$delayed/<seconds>/<topic>`): the message is kept durably in the backbone's
 * compacted `delayed` table until it is due, so it survives restarts, then published normally.
 */
export class DelayedPublisher {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private seq = 0;
  /** Unique per process, so keys written by several gateways never collide. */
  private readonly id = randomBytes(4).toString('hex');

  private constructor(
    private readonly table: Table,
    private readonly publish: (msg: Message) => Promise<unknown>,
    private readonly max: number,
    private readonly log: Logger,
    private readonly scheduling: boolean,
  ) {}

  /**
   * `schedule: false` (a gateway among several) only stores messages; the one process that
   * schedules (the retain service, scaled out) also picks up what other processes store.
   */
  static async open(backbone: Backbone, publish: (msg: Message) => Promise<unknown>, max: number, log: Logger, schedule = true): Promise<DelayedPublisher> {
    const d = new DelayedPublisher(await backbone.table('delayed'), publish, max, log, schedule);
    if (!schedule) return d;
    // A value that is not a message is reported (table, key, offset) and left unscheduled.
    const records = new RecordReader(messageCodec, d.table.name, log);
    const scheduleStored = (key: string, value: Buffer, offset: number | undefined): void => {
      const msg = records.read(key, value, offset);
      if (msg) d.schedule(key, msg, Number(key.split(':')[0]));
    };
    for (const [key, value] of d.table.entries()) scheduleStored(key, value, d.table.offsetOf(key));
    if (d.table.size) log.info({ delayed: d.table.size }, 'restored delayed messages');
    d.table.onRemoteChange = (key, value, offset) => {
      if (value !== null && !d.timers.has(key)) scheduleStored(key, value, offset);
    };
    return d;
  }

  get size(): number {
    return this.table.size;
  }

  /** The stored messages with their due times (ms), soonest first; for the HTTP API. */
  list(): { key: string; due: number; msg: Message }[] {
    const out: { key: string; due: number; msg: Message }[] = [];
    const records = new RecordReader(messageCodec, this.table.name, this.log);
    for (const [key, value] of this.table.entries()) {
      const msg = records.read(key, value, this.table.offsetOf(key));
      if (msg) out.push({ key, due: Number(key.split(':')[0]), msg });
    }
    return out.sort((a, b) => a.due - b.due);
  }

  /** Stores the message for later; resolves when durable. False when the limit is reached. */
  async add(msg: Message, seconds: number): Promise<boolean> {
    if (this.max > 0 && this.table.size >= this.max) return false;
    const due = Date.now() + seconds * 1000;
    const key = `${due}:${this.id}:${++this.seq}`;
    await this.table.set(key, encodeMessage(msg));
    if (this.scheduling) this.schedule(key, msg, due);
    return true;
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(key: string, msg: Message, due: number): void {
    const fire = (): void => {
      const left = due - Date.now();
      // setTimeout holds at most ~24.8 days; longer delays re-arm.
      if (left > 0) return void this.timers.set(key, setTimeout(fire, Math.min(left, 2 ** 31 - 1)));
      this.timers.delete(key);
      const out: Message = { ...msg, timestamp: Date.now(), offset: -1 };
      this.publish(out)
        .then(() => this.table.delete(key))
        .catch((err: Error) => this.log.error({ err, topic: msg.topic }, 'delayed publish failed; kept for the next start'));
    };
    this.timers.set(key, setTimeout(fire, Math.max(0, Math.min(due - Date.now(), 2 ** 31 - 1))));
  }
}

/**
 * Delayed publish on the hooks (EMQX's emqx_delayed, message.publish at 860): a `$delayed/...`
 * message leaves the chain and is stored; the publisher's acknowledgement waits until it is
 * durable. Released messages are published again, so they pass every hook then.
 */
export function registerDelayed(hooks: HookRegistry, delayed: DelayedPublisher, metrics: { dropped(reason: 'no_subscribers' | 'queue_full'): void }, max: number, log: Logger): void {
  hooks.add('message.publish', { name: 'delayed', priority: 'delayed', topics: [`${DELAYED_PREFIX}#`] }, (m, ctx) => {
    const parsed = parseDelayed(m.topic);
    if (!parsed) {
      log.warn({ topic: m.topic, from: m.clientId }, 'invalid $delayed topic: expected $delayed/<seconds>/<topic>; message dropped');
      metrics.dropped('no_subscribers');
      return { stop: true, drop: true };
    }
    const msg = brokerMessage({ ...m, topic: parsed.topic });
    ctx.waitFor(
      delayed.add(msg, parsed.seconds).then((added) => {
        if (added) return;
        log.warn({ topic: m.topic, max }, 'delayed.max_delayed_messages reached; message dropped');
        metrics.dropped('queue_full');
      }),
    );
    return { stop: true, drop: true };
  });
}
