import type { Backbone, Table } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import { RecordReader, ruleCodec, RuleRecord } from '@tributary/records';

/** The compacted backbone table of rules (key: the rule id, value: io.tributary.v1.Rule). */
export const RULES_TABLE = 'rules';

/**
 * The rules of the installation, in the compacted `rules` table, so rules created through the
 * API on any process survive restarts and reach every process (gateways follow it to know which
 * events to write; the rules process to run them).
 */
export class RuleStore {
  private readonly rules = new Map<string, RuleRecord>();
  private readonly listeners = new Set<(id: string, rule: RuleRecord | undefined) => void>();

  private constructor(private readonly table: Table) {}

  static async open(backbone: Backbone, log: Logger, tableName = RULES_TABLE): Promise<RuleStore> {
    await backbone.ensureTopics([{ name: tableName, cleanup: 'compact' }]);
    const table = await backbone.table(tableName);
    const store = new RuleStore(table);
    const reader = new RecordReader(ruleCodec, tableName, log);
    for (const [key, value] of table.entries()) {
      const rule = reader.read(key, value, table.offsetOf(key));
      if (rule) store.rules.set(key, rule);
    }
    table.onRemoteChange = (key, value, offset) => {
      const rule = value === null ? undefined : reader.read(key, value, offset);
      if (value !== null && !rule) return;
      store.changed(key, rule);
    };
    return store;
  }

  get(id: string): RuleRecord | undefined {
    return this.rules.get(id);
  }

  /** Every rule, ordered by creation time (then id): EMQX lists rules in the order they were made. */
  list(): RuleRecord[] {
    return [...this.rules.values()].sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Writes a rule durably; listeners hear of it at once. */
  async put(rule: RuleRecord): Promise<void> {
    this.changed(rule.id, rule);
    await this.table.set(rule.id, ruleCodec.encode(rule));
  }

  /** Deletes a rule; false if there was none. */
  async delete(id: string): Promise<boolean> {
    if (!this.rules.has(id)) return false;
    this.changed(id, undefined);
    await this.table.delete(id);
    return true;
  }

  /** Calls `listener` for every rule written or deleted from now on, here or by another process. */
  onChange(listener: (id: string, rule: RuleRecord | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(id: string, rule: RuleRecord | undefined): void {
    if (rule) this.rules.set(id, rule);
    else this.rules.delete(id);
    for (const l of this.listeners) l(id, rule);
  }
}
