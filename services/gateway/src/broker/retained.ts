import type { Backbone, Table } from '@tributary/backbone';
import { decodeMessage, encodeMessage, Message, remainingExpiry, TopicSet } from '@tributary/mqtt';

/**
 * Retained messages: the latest per topic in the backbone's compacted `retained` table, with a
 * topic index so a wildcard subscribe only visits matching topics.
 */
export class RetainedStore {
  private readonly index = new TopicSet();

  /** Scaled out: retained messages published through this gateway, until the retain service's write is read back. */
  private local: Map<string, Message | null> | undefined;

  private constructor(private readonly table: Table) {
    for (const [topic] of table.entries()) this.index.add(topic);
  }

  /**
   * Scaled out, the retain service writes the table; this copy follows it. A retained message
   * published here is visible here at once (read-your-writes) until that write comes back.
   */
  follow(): void {
    this.table.onRemoteChange = (topic, value) => {
      this.local?.delete(topic);
      if (value === null) this.index.delete(topic);
      else this.index.add(topic);
    };
  }

  /** Records a retained message (or a clear) locally only; see follow(). */
  setLocal(msg: Message): void {
    if (msg.payload.length === 0 && !this.table.has(msg.topic) && !this.local?.has(msg.topic)) return;
    // Offset -1 like any retained copy: its messages-topic offset must not move a subscriber's position.
    (this.local ??= new Map()).set(msg.topic, msg.payload.length === 0 ? null : { ...msg, retain: true, offset: -1 });
    if (msg.payload.length > 0) this.index.add(msg.topic);
  }

  static async open(backbone: Backbone): Promise<RetainedStore> {
    return new RetainedStore(await backbone.table('retained'));
  }

  get size(): number {
    return this.index.size;
  }

  /** Stores (or, for an empty payload, clears [MQTT-3.3.1-10]) the retained message of its topic. */
  set(msg: Message): Promise<void> {
    if (msg.payload.length === 0) {
      if (!this.table.has(msg.topic)) return Promise.resolve();
      this.index.delete(msg.topic);
      return this.table.delete(msg.topic);
    }
    this.index.add(msg.topic);
    return this.table.set(msg.topic, encodeMessage({ ...msg, retain: true }));
  }

  /** Removes the retained messages whose Message Expiry Interval has passed; returns how many. */
  removeExpired(now = Date.now()): number {
    let n = 0;
    for (const [topic, value] of [...this.table.entries()]) {
      const left = remainingExpiry(decodeMessage(value), now);
      if (left === undefined || left > 0) continue;
      this.index.delete(topic);
      void this.table.delete(topic);
      n++;
    }
    return n;
  }

  /** The unexpired retained messages whose topics match `filter`. */
  match(filter: string, now = Date.now()): Message[] {
    const out: Message[] = [];
    for (const topic of this.index.match(filter)) {
      const own = this.local?.get(topic);
      if (own === null) continue;
      const value = own ? undefined : this.table.get(topic);
      if (!own && !value) continue;
      const msg = own ?? decodeMessage(value!);
      const left = remainingExpiry(msg, now);
      if (left !== undefined && left <= 0) continue;
      out.push(msg);
    }
    return out;
  }
}
