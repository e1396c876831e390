import type { FunctionSpec } from '../functions/types';
import type { Value } from '../value';

/**
 * One step of a path after its first name: a map key (`.a`, `.'User-Property'`, `.1`), a constant
 * 1-based index (`[2]`, `[-1]` from the end), or an index computed from an expression (`[i]`).
 * `[0]` and `[-0]` are `head` and `tail`: in an AS target they prepend and append; read, they
 * find nothing.
 */
export type PathSeg =
  | { readonly k: 'key'; readonly key: string }
  | { readonly k: 'index'; readonly index: number | 'head' | 'tail' }
  | { readonly k: 'dyn'; readonly expr: Expr };

/** Arithmetic operators. */
export type ArithOp = '+' | '-' | '*' | '/' | 'div' | 'mod';
/** Comparison operators (`<>` is parsed as `!=`). */
export type CmpOp = '=' | '!=' | '<' | '>' | '<=' | '>=' | '=~';

/** A rule SQL expression (conditions are expressions too). */
export type Expr =
  | { readonly k: 'const'; readonly value: Value }
  /** A column or alias by name. */
  | { readonly k: 'var'; readonly name: string }
  /** A name followed by keys and indexes; `root` is the first name. */
  | { readonly k: 'path'; readonly root: string; readonly segs: readonly PathSeg[] }
  | { readonly k: 'list'; readonly items: readonly Expr[] }
  /** `[from..to]`: the integers from..to, both included. */
  | { readonly k: 'range'; readonly from: number; readonly to: number }
  /** `x[from..to]`: the elements from..to of a list (1-based, negative from the end). */
  | { readonly k: 'slice'; readonly of: Expr; readonly from: number; readonly to: number }
  | { readonly k: 'neg'; readonly expr: Expr }
  | { readonly k: 'arith'; readonly op: ArithOp; readonly left: Expr; readonly right: Expr }
  | { readonly k: 'cmp'; readonly op: CmpOp; readonly left: Expr; readonly right: Expr }
  | { readonly k: 'and' | 'or'; readonly left: Expr; readonly right: Expr }
  | { readonly k: 'not'; readonly expr: Expr }
  | { readonly k: 'in'; readonly expr: Expr; readonly items: readonly Expr[]; readonly negated: boolean }
  /** Without `on`, each `when` is a condition; with it, `on` is compared exactly to each `when`. */
  | { readonly k: 'case'; readonly on?: Expr; readonly whens: readonly { readonly when: Expr; readonly then: Expr }[]; readonly else?: Expr }
  /** A built-in call; the spec was resolved (and the arity checked) at parse time. */
  | { readonly k: 'call'; readonly name: string; readonly args: readonly Expr[]; readonly spec: FunctionSpec };

/**
 * Where a field's value goes: `root` and its path (empty for a plain name). For a field without
 * AS it is the field's own name or path, a string constant's text, or else the field's SQL text.
 */
export interface Target {
  readonly root: string;
  readonly segs: readonly PathSeg[];
}

/** A field of SELECT, FOREACH or DO: `*`, or an expression and where its value goes. */
export type Field =
  | { readonly k: 'star' }
  | { readonly k: 'field'; readonly expr: Expr; readonly target: Target; readonly aliased: boolean };
