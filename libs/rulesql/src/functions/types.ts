import type { Value, ValueMap } from '../value';

/** What a function sees besides its arguments: the event being evaluated (its columns). */
export interface FunctionContext {
  /** The event's columns (`topic`, `payload`, `clientid`, `qos`, `flags`, ...), before any alias. */
  readonly event: ValueMap;
  /** The rule being evaluated (for `metadata.rule_id`, process-dictionary functions). */
  readonly ruleId: string;
}

export type RuleFunction = (args: Value[], ctx: FunctionContext) => Value;

export interface FunctionSpec {
  /** The arities EMQX accepts (e.g. [1, 2]); `{ min }` for variadic functions such as sprintf. */
  readonly arity: readonly number[] | { readonly min: number };
  readonly fn: RuleFunction;
}
