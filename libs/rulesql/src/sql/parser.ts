import { checkTopicFilter } from '@tributary/mqtt';
import type { FunctionSpec } from '../functions/types';
import type { ArithOp, CmpOp, Expr, Field, PathSeg, Target } from './ast';
import { parseError, tokenize, type Token } from './lexer';

/** What the parser needs from outside: the built-in functions, by name. */
export interface ParseOptions {
  functions: (name: string) => FunctionSpec | undefined;
}

/** A parsed rule SQL statement (SELECT or FOREACH). */
export interface Statement {
  readonly kind: 'select' | 'foreach';
  /** The FROM entries, unquoted: topic filters, `$events/...`, `$sources/...`, `$bridges/...`. */
  readonly from: readonly string[];
  /** The SQL text as given. */
  readonly sql: string;
  /** SELECT's fields, or FOREACH's (the last one gives the collection). */
  readonly fields: readonly Field[];
  /** FOREACH's DO fields (empty without DO). */
  readonly doFields: readonly Field[];
  readonly incase?: Expr;
  readonly where?: Expr;
}

/** The FROM prefixes that name an event or a source rather than a topic filter. */
export const EVENT_PREFIXES: readonly string[] = ['$events/', '$sources/', '$bridges/'];

/** A range literal may not produce more elements than this (`[1..100000]`). */
const MAX_RANGE = 100_000;
/**
 * Nesting (parentheses, operands of operators, chains of `a + b + ...`) deeper than this is
 * refused rather than risking the stack when parsing or evaluating.
 */
const MAX_DEPTH = 500;

const CMP_OPS: ReadonlySet<string> = new Set(['=', '!=', '<>', '<', '>', '<=', '>=', '=~']);

function describe(t: Token): string {
  switch (t.type) {
    case 'eof':
      return 'end of input';
    case 'kw':
      return `'${t.value}'`;
    case 'op':
      return `'${t.value}'`;
    case 'str':
      return `string '${t.value}'`;
    case 'qname':
      return `name "${t.value}"`;
    case 'name':
      return `name ${t.value}`;
    default:
      return `number ${t.value}`;
  }
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly sql: string,
    private readonly tokens: readonly Token[],
    private readonly opts: ParseOptions,
  ) {}

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.pos + ahead, this.tokens.length - 1)] as Token;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'eof') this.pos++;
    return t;
  }

  private prevEnd(): number {
    return (this.tokens[this.pos - 1] as Token).end;
  }

  private isKw(word: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === 'kw' && t.value === word;
  }

  private isOp(op: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === 'op' && t.value === op;
  }

  private fail(what: string, t: Token = this.peek()): never {
    throw parseError(what, t.line, t.col);
  }

  private unexpected(expected?: string): never {
    const t = this.peek();
    this.fail(expected ? `expected ${expected} but found ${describe(t)}` : `unexpected ${describe(t)}`, t);
  }

  private expectKw(word: string): void {
    if (!this.isKw(word)) this.unexpected(word);
    this.pos++;
  }

  private expectOp(op: string): void {
    if (!this.isOp(op)) this.unexpected(`'${op}'`);
    this.pos++;
  }

  statement(): Statement {
    const first = this.peek();
    if (first.type === 'eof') this.fail('empty statement', first);
    let kind: 'select' | 'foreach';
    if (this.isKw('SELECT')) kind = 'select';
    else if (this.isKw('FOREACH')) kind = 'foreach';
    else this.unexpected('SELECT or FOREACH');
    this.pos++;
    const fields = this.fieldList(kind === 'foreach');
    let doFields: Field[] = [];
    let incase: Expr | undefined;
    if (kind === 'foreach') {
      if (this.isKw('DO')) {
        this.pos++;
        doFields = this.fieldList(false);
      }
      if (this.isKw('INCASE')) {
        this.pos++;
        incase = this.expr();
      }
    }
    this.expectKw('FROM');
    const from = this.fromList();
    let where: Expr | undefined;
    if (this.isKw('WHERE')) {
      this.pos++;
      where = this.expr();
    }
    if (this.peek().type !== 'eof') this.unexpected();
    return { kind, from, sql: this.sql, fields, doFields, ...(incase ? { incase } : {}), ...(where ? { where } : {}) };
  }

  /** A whole input that is one expression (mqtt.client_attrs_init). */
  expression(): Expr {
    if (this.peek().type === 'eof') this.fail('empty expression');
    const e = this.expr();
    if (this.peek().type !== 'eof') this.unexpected();
    return e;
  }

  private fromList(): string[] {
    const from: string[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type !== 'str' && t.type !== 'qname' && t.type !== 'name') this.unexpected('a topic or event in FROM');
      this.pos++;
      const entry = String(t.value);
      if (!EVENT_PREFIXES.some((p) => entry.startsWith(p))) {
        const problem = checkTopicFilter(entry);
        if (problem) this.fail(`invalid topic filter '${entry}' in FROM (${problem})`, t);
      }
      from.push(entry);
      if (!this.isOp(',')) return from;
      this.pos++;
    }
  }

  private fieldList(foreach: boolean): Field[] {
    const fields: Field[] = [];
    for (;;) {
      fields.push(this.field(foreach));
      if (!this.isOp(',')) return fields;
      this.pos++;
    }
  }

  private field(foreach: boolean): Field {
    const start = this.peek();
    if (this.isOp('*')) {
      if (foreach) this.fail('FOREACH takes expressions, not *', start);
      this.pos++;
      return { k: 'star' };
    }
    if (start.type === 'kw' && (start.value === 'FROM' || start.value === 'DO' || start.value === 'INCASE')) this.unexpected('a field');
    const expr = this.expr();
    const text = this.sql.slice(start.start, this.prevEnd());
    if (this.isKw('AS')) {
      this.pos++;
      return { k: 'field', expr, target: this.target(), aliased: true };
    }
    const t = this.peek();
    if (t.type === 'name' || t.type === 'qname') return { k: 'field', expr, target: this.target(), aliased: true };
    return { k: 'field', expr, target: defaultTarget(expr, text), aliased: false };
  }

  /** An AS target: a name and keys or indexes (`a.b`, `c[-0]`, `payload.x[2].y`). */
  private target(): Target {
    const t = this.peek();
    if (t.type !== 'name' && t.type !== 'qname') this.unexpected('a name after AS');
    this.pos++;
    const segs: PathSeg[] = [];
    if (this.pathSegs(segs)) this.fail('a range cannot be an AS target');
    return { root: String(t.value), segs };
  }

  /**
   * The keys and indexes after a path's first name, into `segs`. Stops after the '[' of a range
   * (`x[1..2]`, a slice) and returns true; returns false at anything else that is not a segment.
   */
  private pathSegs(segs: PathSeg[]): boolean {
    for (;;) {
      if (this.isOp('.')) {
        this.pos++;
        segs.push(this.keySeg());
      } else if (this.isOp('[')) {
        this.pos++;
        if (this.isRangeAhead()) return true;
        const idx = this.constIndex();
        segs.push(idx !== undefined ? { k: 'index', index: idx } : { k: 'dyn', expr: this.expr() });
        this.expectOp(']');
      } else return false;
    }
  }

  /** After a '.': a name (keywords too), an integer (a key of digits) or a quoted key. */
  private keySeg(): PathSeg {
    const t = this.peek();
    if (t.type === 'name' || t.type === 'qname' || t.type === 'str') {
      this.pos++;
      return { k: 'key', key: String(t.value) };
    }
    if (t.type === 'kw') {
      this.pos++;
      return { k: 'key', key: this.sql.slice(t.start, t.end) };
    }
    if (t.type === 'int') {
      this.pos++;
      return { k: 'key', key: this.sql.slice(t.start, t.end) };
    }
    if (t.type === 'float') this.fail(`ambiguous key '${this.sql.slice(t.start, t.end)}' (quote it)`, t);
    this.unexpected('a key after "."');
  }

  /** `INT` or `-INT` between '[' and ']' (the ']' is left for the caller); 0 is head and -0 tail. */
  private constIndex(): number | 'head' | 'tail' | undefined {
    const neg = this.isOp('-');
    const t = this.peek(neg ? 1 : 0);
    if (t.type !== 'int' || !this.isOp(']', neg ? 2 : 1)) return undefined;
    this.pos += neg ? 2 : 1;
    const n = t.value as number;
    if (n === 0) return neg ? 'tail' : 'head';
    return neg ? -n : n;
  }

  /** Is `[-]INT ..` next (a range or slice; the '[' already consumed)? */
  private isRangeAhead(): boolean {
    const neg = this.isOp('-');
    return this.peek(neg ? 1 : 0).type === 'int' && this.isOp('..', neg ? 2 : 1);
  }

  private signedInt(): number {
    const neg = this.isOp('-');
    if (neg) this.pos++;
    const t = this.peek();
    if (t.type !== 'int') this.unexpected('an integer');
    this.pos++;
    return neg ? -(t.value as number) : (t.value as number);
  }

  /** `from..to]` of a range or slice, the '[' already consumed. */
  private rangeBounds(): { from: number; to: number } {
    const from = this.signedInt();
    this.expectOp('..');
    const to = this.signedInt();
    this.expectOp(']');
    return { from, to };
  }

  /** One level deeper (a nested operand, or one more link of an operator chain); `leave` undoes it. */
  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail('expression nested too deeply');
  }

  private leave(levels: number): void {
    this.depth -= levels;
  }

  expr(): Expr {
    this.enter();
    try {
      return this.or();
    } finally {
      this.leave(1);
    }
  }

  private or(): Expr {
    return this.logical('OR', () => this.and());
  }

  private and(): Expr {
    return this.logical('AND', () => this.not());
  }

  /** A left-associative chain of OR or AND. */
  private logical(word: 'OR' | 'AND', operand: () => Expr): Expr {
    const k = word === 'OR' ? 'or' : 'and';
    let left = operand();
    let links = 0;
    try {
      while (this.isKw(word)) {
        this.pos++;
        this.enter();
        links++;
        left = { k, left, right: operand() };
      }
      return left;
    } finally {
      this.leave(links);
    }
  }

  private not(): Expr {
    if (this.isKw('NOT')) {
      this.pos++;
      this.enter();
      try {
        return { k: 'not', expr: this.not() };
      } finally {
        this.leave(1);
      }
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.additive();
    let result: Expr = left;
    const t = this.peek();
    if (t.type === 'op' && CMP_OPS.has(t.value as string)) {
      this.pos++;
      const op = (t.value === '<>' ? '!=' : t.value) as CmpOp;
      result = { k: 'cmp', op, left, right: this.additive() };
    } else if (this.isKw('IN') || (this.isKw('NOT') && this.isKw('IN', 1))) {
      const negated = this.isKw('NOT');
      this.pos += negated ? 2 : 1;
      this.expectOp('(');
      if (this.isOp(')')) this.unexpected();
      result = { k: 'in', expr: left, items: this.exprList(')'), negated };
    } else return left;
    const after = this.peek();
    if ((after.type === 'op' && CMP_OPS.has(after.value as string)) || this.isKw('IN')) {
      this.fail(`comparisons do not chain: unexpected ${describe(after)}`, after);
    }
    return result;
  }

  private additive(): Expr {
    let left = this.multiplicative();
    let links = 0;
    try {
      while (this.isOp('+') || this.isOp('-')) {
        const op = this.next().value as ArithOp;
        this.enter();
        links++;
        left = { k: 'arith', op, left, right: this.multiplicative() };
      }
      return left;
    } finally {
      this.leave(links);
    }
  }

  private multiplicative(): Expr {
    let left = this.unary();
    let links = 0;
    try {
      for (;;) {
        let op: ArithOp;
        if (this.isOp('*')) op = '*';
        else if (this.isOp('/')) op = '/';
        else if (this.isKw('DIV')) op = 'div';
        else if (this.isKw('MOD')) op = 'mod';
        else return left;
        this.pos++;
        this.enter();
        links++;
        left = { k: 'arith', op, left, right: this.unary() };
      }
    } finally {
      this.leave(links);
    }
  }

  private unary(): Expr {
    if (this.isOp('-') || this.isOp('+')) {
      const minus = this.next().value === '-';
      this.enter();
      let expr: Expr;
      try {
        expr = this.unary();
      } finally {
        this.leave(1);
      }
      if (!minus) return expr;
      if (expr.k === 'const' && typeof expr.value === 'number') return { k: 'const', value: -expr.value };
      return { k: 'neg', expr };
    }
    return this.primary();
  }

  private primary(): Expr {
    const t = this.peek();
    switch (t.type) {
      case 'int':
      case 'float':
      case 'str':
        this.pos++;
        return { k: 'const', value: t.value };
      case 'name':
      case 'qname':
        return this.pathOrCall();
      case 'kw':
        if (t.value === 'TRUE' || t.value === 'FALSE') {
          this.pos++;
          return { k: 'const', value: t.value === 'TRUE' };
        }
        if (t.value === 'CASE') return this.caseExpr();
        if ((t.value === 'DIV' || t.value === 'MOD') && this.isOp('(', 1)) {
          this.pos++;
          return this.call(t, String(t.value).toLowerCase()); // div/2 and mod/2 are functions too
        }
        return this.unexpected();
      case 'op':
        if (t.value === '(') {
          this.pos++;
          const e = this.expr();
          this.expectOp(')');
          return e;
        }
        if (t.value === '[') return this.listOrRange();
        return this.unexpected();
      default:
        return this.unexpected();
    }
  }

  /** Expressions separated by commas, maybe none, up to and including `close`. */
  private exprList(close: string): Expr[] {
    const items: Expr[] = [];
    if (!this.isOp(close)) {
      items.push(this.expr());
      while (this.isOp(',')) {
        this.pos++;
        items.push(this.expr());
      }
    }
    this.expectOp(close);
    return items;
  }

  private listOrRange(): Expr {
    const open = this.next();
    if (this.isRangeAhead()) {
      const { from, to } = this.rangeBounds();
      if (to < from - 1) this.fail(`range [${from}..${to}] ends before it starts`, open);
      if (to - from + 1 > MAX_RANGE) this.fail(`range [${from}..${to}] is longer than ${MAX_RANGE}`, open);
      return { k: 'range', from, to };
    }
    return { k: 'list', items: this.exprList(']') };
  }

  private caseExpr(): Expr {
    this.pos++;
    if (this.isKw('END') || this.isKw('ELSE')) this.unexpected('WHEN');
    const on = this.isKw('WHEN') ? undefined : this.expr();
    const whens: { when: Expr; then: Expr }[] = [];
    while (this.isKw('WHEN')) {
      this.pos++;
      const when = this.expr();
      this.expectKw('THEN');
      whens.push({ when, then: this.expr() });
    }
    if (whens.length === 0) this.unexpected('WHEN');
    let otherwise: Expr | undefined;
    if (this.isKw('ELSE')) {
      this.pos++;
      otherwise = this.expr();
    }
    this.expectKw('END');
    return { k: 'case', ...(on ? { on } : {}), whens, ...(otherwise ? { else: otherwise } : {}) };
  }

  /** A name with keys, indexes and maybe a slice; or a function call. */
  private pathOrCall(): Expr {
    const first = this.next();
    const root = String(first.value);
    const segs: PathSeg[] = [];
    if (this.pathSegs(segs)) {
      const { from, to } = this.rangeBounds();
      if (from === 0 || to === 0) this.fail('slice indexes are 1-based; 0 is not an index', first);
      const of: Expr = segs.length === 0 ? { k: 'var', name: root } : { k: 'path', root, segs };
      return { k: 'slice', of, from, to };
    }
    if (this.isOp('(')) {
      if (segs.length > 0) {
        const name = this.sql.slice(first.start, this.prevEnd());
        this.fail(`sql_function_provider_module_not_loaded: ${name}`, first);
      }
      return this.call(first, root);
    }
    return segs.length === 0 ? { k: 'var', name: root } : { k: 'path', root, segs };
  }

  private call(nameTok: Token, name: string): Expr {
    this.expectOp('(');
    const args = this.exprList(')');
    const spec = this.opts.functions(name) ?? this.opts.functions(name.toLowerCase());
    if (!spec || !arityAccepts(spec, args.length)) this.fail(`unknown function ${name}/${args.length}`, nameTok);
    return { k: 'call', name, args, spec };
  }
}

function arityAccepts(spec: FunctionSpec, n: number): boolean {
  const a = spec.arity;
  return 'min' in a ? n >= a.min : a.includes(n);
}

/** Where a field without AS goes (EMQX): its name or path, a string's text, else its SQL text. */
function defaultTarget(expr: Expr, text: string): Target {
  switch (expr.k) {
    case 'var':
      return { root: expr.name, segs: [] };
    case 'path':
      return { root: expr.root, segs: expr.segs };
    case 'slice':
      return defaultTarget(expr.of, text);
    case 'const':
      if (typeof expr.value === 'string') return { root: expr.value, segs: [] };
      return { root: text, segs: [] };
    default:
      return { root: text, segs: [] };
  }
}

/** Parses a statement into its AST; throws ValidationError('SQL_PARSE_ERROR') naming line and column. */
export function parseStatement(sql: string, opts: ParseOptions): Statement {
  return new Parser(sql, tokenize(sql), opts).statement();
}

/** Parses one expression (no SELECT, no FROM): the same grammar and errors as a statement's fields. */
export function parseExpr(text: string, opts: ParseOptions): Expr {
  return new Parser(text, tokenize(text), opts).expression();
}
