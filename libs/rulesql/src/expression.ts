import { lookupFunction } from './functions';
import { compileExpression, parseExpr } from './sql';
import type { Value, ValueMap } from './value';

/** One expression of rule SQL, compiled: what `mqtt.client_attrs_init` evaluates at CONNECT. */
export interface Expression {
  /** The text as given. */
  readonly text: string;
  /**
   * Evaluates over `columns` as a field of a SELECT would (paths such as `user_property.x`,
   * every built-in function). Throws RuleEvalError on an evaluation error.
   */
  run(columns: ValueMap): Value;
}

/**
 * Parses and compiles one expression of rule SQL (no SELECT, no FROM: `nth(1, tokens(clientid,
 * '-'))`). Throws ValidationError('SQL_PARSE_ERROR', '<what> at line L, column C') as parseSql
 * does, also for an unknown function or a wrong arity.
 */
export function parseExpression(text: string): Expression {
  const run = compileExpression(parseExpr(text, { functions: lookupFunction }));
  return { text, run };
}
