import type { Backbone, Table } from '@tributary/backbone';
import { decodeMessage, encodeMessage, Message, remainingExpiry, TopicSet } from '@tributary/mqtt';

/**
 * Retained messages: the latest per topic in the backbone's compacted `retained` table, with a
 * topic index so a wildcard subscribe only visits matching topics.
 */
export class RetainedStore {
  private readonly index = new TopicSet();

  private constructor(private readonly table: Table) {
    for (const [topic] of table.entries()) this.index.add(topic);
  }

  /** Scaled out, other gateways write the table too: keep the topic index in step with their changes. */
  follow(): void {
    this.table.onRemoteChange = (topic, value) => {
      if (value === null) this.index.delete(topic);
      else this.index.add(topic);
    };
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
      let left: number | undefined;
      try {
        left = remainingExpiry(decodeMessage(value), now);
      } catch {
        left = 0; // not a message: nothing a subscriber could be sent
      }
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
      const value = this.table.get(topic);
      if (!value) continue;
      const msg = decodeMessage(value);
      const left = remainingExpiry(msg, now);
      if (left !== undefined && left <= 0) continue;
      out.push(msg);
    }
    return out;
  }
}
