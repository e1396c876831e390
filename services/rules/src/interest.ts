import type { Logger } from '@tributary/common';
import { isSourceName, parseRuleSql } from './engine';
import type { RuleStore } from './store';

/**
 * Which sources the installation's enabled rules select from, followed from the rules table:
 * what a gateway needs to know to write only the events (and message columns) some rule reads,
 * so that with no rule nothing is built or appended.
 */
export class RuleInterest {
  private sources = new Set<string>();
  private messages = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly store: RuleStore,
    private readonly log: Logger,
  ) {
    this.refresh();
    store.onChange(() => this.refresh());
  }

  /** Whether an enabled rule selects from `source` (`$events/client_connected`, ...). */
  wants(source: string): boolean {
    return this.sources.has(source);
  }

  /** Whether an enabled rule selects from message topics. */
  get wantsMessages(): boolean {
    return this.messages;
  }

  /**
   * Whether an enabled rule selects an event that names the publisher of a message another
   * process may report (deliveries' from_username; message_dropped's username, peerhost ...).
   */
  get wantsPublishers(): boolean {
    return this.sources.has('$events/message_delivered') || this.sources.has('$events/message_acked') || this.sources.has('$events/delivery_dropped') || this.sources.has('$events/message_dropped');
  }

  onChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  private refresh(): void {
    const sources = new Set<string>();
    let messages = false;
    for (const r of this.store.list()) {
      if (!r.enable) continue;
      try {
        for (const f of parseRuleSql(r.sql).from) {
          if (isSourceName(f)) sources.add(f);
          else messages = true;
        }
      } catch (err) {
        this.log.warn({ rule: r.id, err: (err as Error).message }, 'rule does not parse; its sources are not followed');
      }
    }
    this.sources = sources;
    this.messages = messages;
    for (const l of this.listeners) l();
  }
}
