/** One action of a rule: a sink id (`"http:my_hook"`) or a built-in function with its arguments. */
export type RuleActionSpec = string | { function: string; args?: Record<string, unknown> };

/** One rule (rules table, key: its id), EMQX's field names. */
export interface RuleRecord {
  id: string;
  name: string;
  sql: string;
  actions: RuleActionSpec[];
  enable: boolean;
  description: string;
  metadata: Record<string, unknown>;
  /** Milliseconds since the epoch. */
  created_at: number;
  updated_at: number;
}
