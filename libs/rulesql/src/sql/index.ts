/**
 * EMQX's rule SQL: `parseSql` turns a statement into a Statement (its AST, compiled to closures
 * once), `evaluate` runs it on an event's columns, `fromMatches` says whether an event's source
 * is one of its FROM entries. `getPath`/`parsePath` give templates the same path lookups.
 */
import { compileStatement } from './eval';
import { parseStatement, type ParseOptions, type Statement } from './parser';

export type { ArithOp, CmpOp, Expr, Field, PathSeg, Target } from './ast';
export { compare, compileExpression, evaluate, exactEq, fromMatches, type EvalOptions } from './eval';
export { KEYWORDS, tokenize, type Token, type TokenType } from './lexer';
export { EVENT_PREFIXES, parseExpr, type ParseOptions, type Statement } from './parser';
export { getPath, parsePath } from './path';

/**
 * Parses and compiles a statement. Throws ValidationError('SQL_PARSE_ERROR', '<what> at line L,
 * column C'), also for an unknown function or a wrong arity (`unknown function foo/2`) and for a
 * `module.func(...)` call (`sql_function_provider_module_not_loaded`).
 */
export function parseSql(sql: string, opts: ParseOptions): Statement {
  const stmt = parseStatement(sql, opts);
  compileStatement(stmt);
  return stmt;
}
