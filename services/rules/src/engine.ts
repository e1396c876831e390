import { isRetriable, TributaryError, ValidationError, type Logger } from '@tributary/common';
import type { RuleRecord } from '@tributary/records';
import { type Action, compileActions, consoleAction, type Republisher } from './actions';
import type { SinkBuffer } from './buffer';
import { RuleMetrics } from './metrics';
import type { RuleStore } from './store';
import type { Message } from '@tributary/mqtt';
import { evaluate, fromMatches, lookupFunction, parseSql, type Statement, type ValueMap } from '@tributary/rulesql';

/** A rule ready to run: its parsed SQL, compiled actions and counters. */
export interface CompiledRule {
  readonly record: RuleRecord;
  readonly stmt: Statement;
  readonly actions: Action[];
  /** FROM entries that are topic filters (message publish). */
  readonly topics: readonly string[];
  /** FROM entries that name an event or a source (`$events/...`, `$sources/...`, `$bridges/...`). */
  readonly sources: readonly string[];
}

/** Whether a FROM entry names an event or bridge source rather than a topic filter. */
export function isSourceName(from: string): boolean {
  return from.startsWith('$events/') || from.startsWith('$sources/') || from.startsWith('$bridges/');
}

/** Parses a rule's SQL with the built-in functions; throws ValidationError SQL_PARSE_ERROR. */
export function parseRuleSql(sql: string): Statement {
  if (typeof sql !== 'string' || sql.trim() === '') throw new ValidationError('SQL_PARSE_ERROR', 'sql: empty');
  return parseSql(sql, { functions: lookupFunction });
}

/** The requests a batch of events produced, grouped so each sink gets one append and republished messages keep their order. */
export class Outputs {
  readonly sinkRows = new Map<string, { rows: ValueMap[]; rules: CompiledRule[] }>();
  readonly republished: { msg: Message; rule: CompiledRule }[] = [];
}

/**
 * The rule engine: the rules of the `rules` table compiled, counted and run on events. It does
 * not read the backbone itself (RulesService feeds it), so the rule-test API runs the same code.
 */
export class RuleEngine {
  private readonly compiled = new Map<string, CompiledRule>();
  private readonly metrics = new Map<string, RuleMetrics>();
  private topicRules: CompiledRule[] = [];
  private sourceRules = new Map<string, CompiledRule[]>();
  private readonly changeListeners = new Set<() => void>();
  /** `rules.matched` etc., EMQX's global counters. */
  readonly totals = { matched: 0, actionsExecuted: 0, actionsMessages: 0 };

  constructor(
    private readonly store: RuleStore,
    private readonly sinks: ReadonlyMap<string, SinkBuffer>,
    private readonly republisher: Republisher | undefined,
    private readonly log: Logger,
  ) {
    for (const rule of store.list()) this.load(rule);
    this.reindex();
    store.onChange((id, rule) => {
      this.compiled.delete(id);
      if (rule) this.load(rule);
      else this.metrics.delete(id);
      this.reindex();
    });
  }

  /** Compiles a rule; throws ValidationError naming what is wrong (the API's 400). */
  compile(record: RuleRecord): CompiledRule {
    const stmt = parseRuleSql(record.sql);
    const actions = compileActions(record.actions, { sinks: this.sinks });
    if (!this.republisher && actions.some((a) => a.kind === 'republish')) throw new ValidationError('INVALID_ARGUMENT', 'republish is not available in this process');
    return { record, stmt, actions, topics: stmt.from.filter((f) => !isSourceName(f)), sources: stmt.from.filter(isSourceName) };
  }

  private load(record: RuleRecord): void {
    try {
      this.compiled.set(record.id, this.compile(record));
      if (!this.metrics.has(record.id)) this.metrics.set(record.id, new RuleMetrics());
    } catch (err) {
      this.log.error({ rule: record.id, err: (err as Error).message }, 'rule does not compile; it does not run');
    }
  }

  private reindex(): void {
    const enabled = [...this.compiled.values()].filter((r) => r.record.enable).sort((a, b) => a.record.created_at - b.record.created_at);
    this.topicRules = enabled.filter((r) => r.topics.length > 0);
    const sources = new Map<string, CompiledRule[]>();
    for (const r of enabled) for (const s of r.sources) sources.set(s, [...(sources.get(s) ?? []), r]);
    this.sourceRules = sources;
    for (const l of this.changeListeners) l();
  }

  /** Calls `listener` whenever the set of running rules changes. */
  onChange(listener: () => void): void {
    this.changeListeners.add(listener);
  }

  /** Whether any running rule selects from message topics. */
  get wantsMessages(): boolean {
    return this.topicRules.length > 0;
  }

  /** Whether any running rule selects from `source` (`$events/client_connected`, `$sources/mqtt:x`). */
  wants(source: string): boolean {
    return this.sourceRules.has(source);
  }

  /** The event and bridge sources the running rules select from. */
  get sourceNames(): string[] {
    return [...this.sourceRules.keys()];
  }

  metricsOf(id: string): RuleMetrics | undefined {
    return this.metrics.get(id);
  }

  compiledRule(id: string): CompiledRule | undefined {
    return this.compiled.get(id);
  }

  /** Samples every rule's rates (the service calls it every 5 s). */
  sample(now: number): void {
    for (const m of this.metrics.values()) m.sample(now);
  }

  /**
   * Runs the rules whose FROM matches a message topic. `columns` is called only when one does
   * (decoding is skipped for topics no rule selects), `republishBy` is the rule that made the
   * message (that rule skips it), `at` its publish time (a rule only sees messages published
   * after it was last written, so a rule made now does not run on older messages replayed).
   */
  onMessage(topic: string, columns: () => ValueMap, republishBy: string | undefined, at: number, out: Outputs): void {
    let cols: ValueMap | undefined;
    for (const rule of this.topicRules) {
      if (rule.record.id === republishBy || at < rule.record.updated_at) continue;
      if (!fromMatches(rule.stmt, topic)) continue;
      cols ??= columns();
      this.run(rule, cols, out);
    }
  }

  /** Runs the rules selecting from an event or bridge source. */
  onEvent(source: string, columns: ValueMap, at: number, out: Outputs): void {
    const rules = this.sourceRules.get(source);
    if (!rules) return;
    for (const rule of rules) if (at >= rule.record.updated_at) this.run(rule, columns, out);
  }

  /** Evaluates one rule on one event and performs (or, for sinks and republish, collects) its actions. */
  run(rule: CompiledRule, columns: ValueMap, out: Outputs): ValueMap[] | undefined {
    const m = this.metrics.get(rule.record.id)!;
    m.matched++;
    this.totals.matched++;
    let rows: ValueMap[] | undefined;
    try {
      rows = evaluate(rule.stmt, columns, { ruleId: rule.record.id });
    } catch (err) {
      m.failedException++;
      if (!(err instanceof TributaryError)) m.failedUnknown++;
      this.log.debug({ rule: rule.record.id, err: (err as Error).message }, 'rule evaluation failed');
      return undefined;
    }
    if (!rows || rows.length === 0) {
      m.failedNoResult++;
      return undefined;
    }
    m.passed++;
    for (const row of rows) {
      for (const action of rule.actions) {
        m.actionsTotal++;
        this.totals.actionsExecuted++;
        if (action.kind === 'console') {
          consoleAction(this.log, rule.record.id, row, columns);
          m.actionsSuccess++;
        } else if (action.kind === 'sink') {
          let entry = out.sinkRows.get(action.id);
          if (!entry) out.sinkRows.set(action.id, (entry = { rows: [], rules: [] }));
          entry.rows.push(row);
          entry.rules.push(rule);
        } else {
          try {
            out.republished.push({ msg: action.render(row, rule.record.id), rule });
          } catch (err) {
            m.actionsFailedUnknown++;
            this.log.warn({ rule: rule.record.id, err: (err as Error).message }, 'republish failed');
          }
        }
      }
    }
    return rows;
  }

  /**
   * Makes the collected actions durable: one append per sink buffer, republished messages in
   * order. Throws (so the caller's batch is not committed and comes again) when the backbone
   * did not take them; a message refused for good (an invalid one) only counts as failed.
   */
  async flush(out: Outputs): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const [id, entry] of out.sinkRows) {
      const sink = this.sinks.get(id);
      if (!sink) {
        for (const r of entry.rules) this.metrics.get(r.record.id)!.actionsFailedOutOfService++;
        continue;
      }
      waits.push(
        sink.enqueue(entry.rows).then(() => {
          for (const r of entry.rules) this.metrics.get(r.record.id)!.actionsSuccess++;
          this.totals.actionsMessages += entry.rows.length;
        }),
      );
    }
    if (out.republished.length > 0) {
      // Published together (each append takes its place in the log when called, so order holds),
      // not one durable write after another.
      const publisher = this.republisher!;
      for (const { msg, rule } of out.republished) {
        const m = this.metrics.get(rule.record.id)!;
        waits.push(
          publisher.publish(msg).then(
            () => void m.actionsSuccess++,
            (err: unknown) => {
              if (isRetriable(err)) throw err;
              m.actionsFailedUnknown++;
              this.log.warn({ rule: rule.record.id, topic: msg.topic, err: (err as Error).message }, 'republish failed');
            },
          ),
        );
      }
    }
    await Promise.all(waits);
  }
}
