import type { Backbone, Table } from '@tributary/backbone';
import { Logger, silentLogger } from '@tributary/common';
import { encodeMessage, Message, remainingExpiry, TopicSet } from '@tributary/mqtt';
import { messageCodec, RecordReader } from '@tributary/records';
import { RETAINED_TABLE } from '@tributary/router';

/**
 * Retained messages: the latest per topic in the backbone's compacted `retained` table, with a
 * topic index so a wildcard subscribe only visits matching topics.
 */
export class RetainedStore {
  private readonly index = new TopicSet();
  /** Values that are not messages are reported (table, topic, offset) and skipped, not sent. */
  readonly records: RecordReader<Message>;

  /** mqtt.max_retained_messages: at most this many topics keep a retained message (0 = no limit). */
  private constructor(
    private readonly table: Table,
    private readonly maxMessages: number,
    log: Logger,
  ) {
    this.records = new RecordReader(messageCodec, table.name, log);
    for (const [topic] of table.entries()) this.index.add(topic);
  }

  /** Scaled out, other gateways write the table too: keep the topic index in step with their changes. */
  follow(): void {
    // What arrived between open() and now is in the table already.
    for (const [topic] of this.table.entries()) this.index.add(topic);
    this.table.onRemoteChange = (topic, value) => {
      if (value === null) this.index.delete(topic);
      else this.index.add(topic);
    };
  }

  static async open(backbone: Backbone, maxMessages = 0, log: Logger = silentLogger): Promise<RetainedStore> {
    return new RetainedStore(await backbone.table(RETAINED_TABLE), maxMessages, log);
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * Stores (or, for an empty payload, clears [MQTT-3.3.1-10]) the retained message of its topic.
   * With max_retained_messages reached, a message for a topic that has none is not retained (as
   * in EMQX; it is still published); replacing or clearing one always works.
   */
  set(msg: Message): Promise<void> {
    if (msg.payload.length === 0) {
      // Written even when this copy has nothing for the topic: another process may have set it a moment ago.
      this.index.delete(msg.topic);
      return this.table.delete(msg.topic);
    }
    if (this.maxMessages > 0 && this.index.size >= this.maxMessages && this.table.get(msg.topic) === undefined) return Promise.resolve();
    this.index.add(msg.topic);
    return this.table.set(msg.topic, encodeMessage({ ...msg, retain: true }));
  }

  /**
   * Removes the retained messages whose Message Expiry Interval has passed; resolves with how
   * many. Scaled out, a gateway may have just replaced one: the table is brought up to date
   * first and only a value still the same expired one is removed.
   */
  async removeExpired(now = Date.now()): Promise<number> {
    const expired: [string, Buffer][] = [];
    for (const [topic, value] of this.table.entries()) {
      const msg = this.records.read(topic, value, this.table.offsetOf(topic));
      // Not a message (reported): nothing a subscriber could be sent, so it goes too.
      const left = msg ? remainingExpiry(msg, now) : 0;
      if (left !== undefined && left <= 0) expired.push([topic, value]);
    }
    if (expired.length === 0) return 0;
    await this.table.sync?.();
    let n = 0;
    for (const [topic, value] of expired) {
      if (this.table.get(topic) !== value) continue;
      this.index.delete(topic);
      void this.table.delete(topic);
      n++;
    }
    return n;
  }

  /** One topic's retained message (expired or not), for the HTTP API. */
  get(topic: string): Message | undefined {
    const value = this.table.get(topic);
    return (value && this.records.read(topic, value, this.table.offsetOf(topic))) || undefined;
  }

  /** Every retained message, topics in order, for the HTTP API (a copy: O(n) per call). */
  all(): Message[] {
    const out: Message[] = [];
    for (const [topic, value] of this.table.entries()) {
      const msg = this.records.read(topic, value, this.table.offsetOf(topic));
      if (msg) out.push(msg);
    }
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  }

  /** The unexpired retained messages whose topics match `filter`. */
  match(filter: string, now = Date.now()): Message[] {
    const out: Message[] = [];
    for (const topic of this.index.match(filter)) {
      const value = this.table.get(topic);
      const msg = value && this.records.read(topic, value, this.table.offsetOf(topic));
      if (!msg) continue;
      const left = remainingExpiry(msg, now);
      if (left !== undefined && left <= 0) continue;
      out.push(msg);
    }
    return out;
  }
}
