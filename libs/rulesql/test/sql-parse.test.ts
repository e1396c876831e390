import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { TributaryError } from '@tributary/common';
import type { FunctionSpec } from '../src/functions/types';
import { parsePath, parseSql, type Expr, type Field, type ParseOptions, type Statement } from '../src/sql';

/** A few functions of the tests' own, in the FunctionSpec shape (the real library is elsewhere). */
const FUNCTIONS: Record<string, FunctionSpec> = {
  lower: { arity: [1], fn: ([s]) => String(s).toLowerCase() },
  concat: { arity: [2], fn: ([a, b]) => String(a) + String(b) },
  nth: { arity: [2], fn: ([n, l]) => (Array.isArray(l) && typeof n === 'number' ? l[n - 1] : undefined) },
  sprintf: { arity: { min: 1 }, fn: ([f]) => String(f) },
  mod: { arity: [2], fn: ([a, b]) => (a as number) % (b as number) },
};
const opts: ParseOptions = { functions: (name) => FUNCTIONS[name] };

const parse = (sql: string): Statement => parseSql(sql, opts);
const fieldExpr = (sql: string, i = 0): Expr => {
  const f = parse(sql).fields[i] as Field;
  assert.equal(f.k, 'field');
  return (f as Extract<Field, { k: 'field' }>).expr;
};
const whereOf = (cond: string): Expr => parse(`SELECT * FROM "t" WHERE ${cond}`).where as Expr;

/** Asserts that parsing fails with SQL_PARSE_ERROR and a message matching `re` (with its position). */
function parseFails(sql: string, re: RegExp): void {
  assert.throws(
    () => parse(sql),
    (e: unknown) => {
      assert.ok(e instanceof TributaryError, String(e));
      assert.equal(e.code, 'SQL_PARSE_ERROR');
      assert.match(e.message, re);
      return true;
    },
  );
}

/** Strips the AST down to a compact S-expression, for readable precedence assertions. */
function sexp(e: Expr): string {
  switch (e.k) {
    case 'const':
      return JSON.stringify(e.value);
    case 'var':
      return e.name;
    case 'path':
      return `${e.root}${e.segs.map((s) => (s.k === 'key' ? `.${s.key}` : s.k === 'index' ? `[${s.index}]` : `[${sexp(s.expr)}]`)).join('')}`;
    case 'neg':
      return `(- ${sexp(e.expr)})`;
    case 'not':
      return `(not ${sexp(e.expr)})`;
    case 'arith':
    case 'cmp':
      return `(${e.op} ${sexp(e.left)} ${sexp(e.right)})`;
    case 'and':
    case 'or':
      return `(${e.k} ${sexp(e.left)} ${sexp(e.right)})`;
    case 'in':
      return `(${e.negated ? 'not-in' : 'in'} ${sexp(e.expr)} ${e.items.map(sexp).join(' ')})`;
    case 'list':
      return `[${e.items.map(sexp).join(' ')}]`;
    case 'range':
      return `[${e.from}..${e.to}]`;
    case 'slice':
      return `${sexp(e.of)}[${e.from}..${e.to}]`;
    case 'call':
      return `${e.name}(${e.args.map(sexp).join(' ')})`;
    case 'case':
      return `(case${e.on ? ` ${sexp(e.on)}` : ''} ${e.whens.map((w) => `${sexp(w.when)}=>${sexp(w.then)}`).join(' ')}${e.else ? ` else ${sexp(e.else)}` : ''})`;
  }
}

describe('rule SQL parsing', () => {
  it('parses SELECT fields, FROM and WHERE, keeping the SQL text', () => {
    const sql = 'SELECT clientid, payload.x AS x FROM "t/#" WHERE qos > 0';
    const s = parse(sql);
    assert.equal(s.kind, 'select');
    assert.deepEqual(s.from, ['t/#']);
    assert.equal(s.sql, sql);
    assert.equal(s.fields.length, 2);
    assert.equal(sexp(s.where as Expr), '(> qos 0)');
    assert.equal(parse('SELECT * FROM "t"').where, undefined);
  });

  it('FROM takes "double", \'single\' and bare entries, and several of them', () => {
    assert.deepEqual(parse(`SELECT * FROM "t/1", 't/+', abc, "$events/client_connected"`).from, ['t/1', 't/+', 'abc', '$events/client_connected']);
    assert.deepEqual(parse(`SELECT * FROM "foo 'bar'"`).from, ["foo 'bar'"]);
    parseFails('SELECT * FROM abc ec', /unexpected name ec at line 1, column 19/);
    parseFails('SELECT * FROM "t/#/x"', /invalid topic filter 't\/#\/x' in FROM \(bad-wildcard\) at line 1, column 15/);
    parseFails('SELECT * FROM', /expected a topic or event in FROM but found end of input at line 1, column 14/);
  });

  it('keywords are case-insensitive and -- comments run to the end of the line', () => {
    const s = parse('select a -- the first\n  , b as "c" -- and more\nfrom "t" where a = 1 and not b\n');
    assert.equal(s.fields.length, 2);
    assert.equal(sexp(s.where as Expr), '(and (= a 1) (not b))');
    assert.equal(parse('SeLeCt 1 As x FrOm "t"').kind, 'select');
    const f = s.fields[1] as Extract<Field, { k: 'field' }>;
    assert.deepEqual(f.target, { root: 'c', segs: [] });
  });

  it('AS is optional; a field without one keeps its name, path, string or SQL text', () => {
    const s = parse("SELECT a b, x, p.q, 'txt', lower(clientid), 1 + 2, a[1..2] FROM t");
    const targets = s.fields.map((f) => (f.k === 'field' ? [f.aliased, f.target.root, f.target.segs.length] : '*'));
    assert.deepEqual(targets, [
      [true, 'b', 0],
      [false, 'x', 0],
      [false, 'p', 1],
      [false, 'txt', 0],
      [false, 'lower(clientid)', 0],
      [false, '1 + 2', 0],
      [false, 'a', 0],
    ]);
  });

  it('precedence: OR < AND < NOT < comparison < + - < * / div mod < unary minus', () => {
    assert.equal(sexp(whereOf('a = 1 or b = 2 and not c = 3')), '(or (= a 1) (and (= b 2) (not (= c 3))))');
    assert.equal(sexp(whereOf('a + b * c = d - e / f')), '(= (+ a (* b c)) (- d (/ e f)))');
    assert.equal(sexp(whereOf('a div b mod c + d = 1')), '(= (+ (mod (div a b) c) d) 1)');
    assert.equal(sexp(whereOf('-a * b > 0')), '(> (* (- a) b) 0)');
    assert.equal(sexp(whereOf('a - b - c = 0')), '(= (- (- a b) c) 0)');
    assert.equal(sexp(whereOf('(a or b) and c')), '(and (or a b) c)');
    assert.equal(sexp(whereOf('not not a')), '(not (not a))');
    assert.equal(sexp(whereOf('x <> 1 and y != 2 and z =~ \'t/#\'')), "(and (and (!= x 1) (!= y 2)) (=~ z \"t/#\"))");
  });

  it('comparisons do not chain', () => {
    parseFails('SELECT * FROM t WHERE a = b = c', /comparisons do not chain: unexpected '=' at line 1, column 29/);
    parseFails('SELECT * FROM t WHERE a < b in (1)', /comparisons do not chain/);
  });

  it('IN and NOT IN take a parenthesized list of expressions', () => {
    assert.equal(sexp(whereOf("clientid in ('a', lower(x), 1 + 1)")), '(in clientid "a" lower(x) (+ 1 1))');
    assert.equal(sexp(whereOf('qos not in (0, 1)')), '(not-in qos 0 1)');
    parseFails('SELECT * FROM t WHERE a in ()', /unexpected '\)'/);
  });

  it("'single' quotes make strings, \"double\" quotes make names", () => {
    assert.equal(sexp(whereOf(`clientid = "foo"`)), '(= clientid foo)');
    assert.equal(sexp(whereOf(`clientid = 'foo'`)), '(= clientid "foo")');
    assert.equal(sexp(whereOf(`x = 'it''s'`)), `(= x "it's")`);
    assert.equal(sexp(whereOf(`x = 'a\\nb'`)), `(= x "a\\\\nb")`, 'backslashes stay as they are');
    assert.equal(sexp(fieldExpr(`SELECT "odd ""name""".x FROM t`)), 'odd "name".x');
  });

  it('numbers: integers, floats, exponents; true and false', () => {
    assert.deepEqual(fieldExpr('SELECT 42 FROM t'), { k: 'const', value: 42 });
    assert.deepEqual(fieldExpr('SELECT 1.5 FROM t'), { k: 'const', value: 1.5 });
    assert.deepEqual(fieldExpr('SELECT 1.5e3 FROM t'), { k: 'const', value: 1500 });
    assert.deepEqual(fieldExpr('SELECT 2E-2 FROM t'), { k: 'const', value: 0.02 });
    assert.deepEqual(fieldExpr('SELECT -7 FROM t'), { k: 'const', value: -7 });
    assert.deepEqual(fieldExpr('SELECT TRUE FROM t'), { k: 'const', value: true });
    assert.deepEqual(fieldExpr('SELECT false FROM t'), { k: 'const', value: false });
    parseFails('SELECT 12abc FROM t', /bad number '12a' at line 1, column 8/);
  });

  it('paths: keys, quoted keys, digit keys, constant, negative and computed indexes', () => {
    assert.deepEqual(fieldExpr("SELECT pub_props.'User-Property'.foo FROM t"), {
      k: 'path',
      root: 'pub_props',
      segs: [
        { k: 'key', key: 'User-Property' },
        { k: 'key', key: 'foo' },
      ],
    });
    assert.equal(sexp(fieldExpr('SELECT a.1.b FROM t')), 'a.1.b');
    assert.equal(sexp(fieldExpr('SELECT a[1][-2].b[c.d] FROM t')), 'a[1][-2].b[c.d]');
    assert.equal(sexp(fieldExpr('SELECT a.from.end FROM t')), 'a.from.end', 'keywords are keys after a dot');
    parseFails('SELECT a.1.100 FROM t', /ambiguous key '1.100' \(quote it\) at line 1, column 10/);
    parseFails('SELECT a.[1] FROM t', /expected a key after "." but found '\['/);
  });

  it('lists take expressions; [a..b] is a range, x[a..b] a slice', () => {
    assert.equal(sexp(fieldExpr("SELECT [1, a.b, 'x', lower(c), []] FROM t")), '[1 a.b "x" lower(c) []]');
    assert.deepEqual(fieldExpr('SELECT [1..4] FROM t'), { k: 'range', from: 1, to: 4 });
    assert.deepEqual(fieldExpr('SELECT [-2..2] FROM t'), { k: 'range', from: -2, to: 2 });
    assert.equal(sexp(fieldExpr('SELECT a.b[2..-1] FROM t')), 'a.b[2..-1]');
    parseFails('SELECT [3..1] FROM t', /range \[3..1\] ends before it starts/);
    parseFails('SELECT [1..1000000] FROM t', /longer than 100000/);
    parseFails('SELECT a[1..2].c FROM t', /expected FROM but found '\.'/);
    parseFails('SELECT x as a[1..2] FROM t', /a range cannot be an AS target/);
  });

  it('AS targets are paths: keys, [0] head, [-0] tail, indexes', () => {
    const f = parse('SELECT 0 as payload.x[2].y, 1 as c[-0], 2 as c[0] FROM t').fields as Extract<Field, { k: 'field' }>[];
    assert.deepEqual(
      f.map((x) => x.target),
      [
        { root: 'payload', segs: [{ k: 'key', key: 'x' }, { k: 'index', index: 2 }, { k: 'key', key: 'y' }] },
        { root: 'c', segs: [{ k: 'index', index: 'tail' }] },
        { root: 'c', segs: [{ k: 'index', index: 'head' }] },
      ],
    );
    parseFails("SELECT 1 as 'x' FROM t", /expected a name after AS but found string 'x' at line 1, column 13/);
  });

  it('CASE in both forms, with and without ELSE', () => {
    assert.equal(sexp(fieldExpr('SELECT CASE WHEN a > b THEN a WHEN a < b THEN 1 ELSE 2 END FROM t')), '(case (> a b)=>a (< a b)=>1 else 2)');
    assert.equal(sexp(fieldExpr("SELECT case qos when 0 then 'zero' end as q FROM t")), '(case qos 0=>"zero")');
    parseFails('SELECT CASE END FROM t', /expected WHEN but found 'END'/);
    parseFails('SELECT CASE WHEN a THEN 1 FROM t', /expected END but found 'FROM'/);
  });

  it('resolves functions at parse time and checks their arity', () => {
    const e = fieldExpr('SELECT concat(lower(a), sprintf(\'x\', 1, 2)) FROM t');
    assert.equal(sexp(e), 'concat(lower(a) sprintf("x" 1 2))');
    assert.equal(e.k === 'call' && e.spec, FUNCTIONS['concat']);
    assert.equal(sexp(fieldExpr('SELECT LOWER(a) FROM t')), 'LOWER(a)', 'names are found in lower case too');
    parseFails('SELECT foo(1, 2) FROM t', /^unknown function foo\/2 at line 1, column 8$/);
    parseFails('SELECT x,\n  lower(1, 2) FROM t', /^unknown function lower\/2 at line 2, column 3$/);
    parseFails('SELECT sprintf() FROM t', /unknown function sprintf\/0/);
    assert.equal(sexp(fieldExpr('SELECT mod(7, 2), 7 mod 2 FROM t')), 'mod(7 2)', 'div and mod are also function names');
    parseFails('SELECT mod1.func(1) FROM t', /^sql_function_provider_module_not_loaded: mod1.func at line 1, column 8$/);
  });

  it('FOREACH with DO, INCASE, FROM and WHERE', () => {
    const s = parse('FOREACH payload.sensors as s DO s.name, clientid INCASE s.v > 1 FROM "t/#" WHERE qos = 1');
    assert.equal(s.kind, 'foreach');
    assert.equal(s.fields.length, 1);
    assert.equal(s.doFields.length, 2);
    assert.equal(sexp(s.incase as Expr), '(> s.v 1)');
    assert.equal(sexp(s.where as Expr), '(= qos 1)');
    assert.equal(parse('FOREACH a INCASE a <> 1 FROM abc').doFields.length, 0);
    parseFails('FOREACH * FROM t', /FOREACH takes expressions, not \* at line 1, column 9/);
    parseFails('SELECT a DO b FROM t', /expected FROM but found 'DO'/);
  });

  it('errors name the line and column', () => {
    parseFails('', /^empty statement at line 1, column 1$/);
    parseFails('UPDATE t', /^expected SELECT or FOREACH but found name UPDATE at line 1, column 1$/);
    parseFails('SELECT a,\n  b +\n  FROM t', /^unexpected 'FROM' at line 3, column 3$/);
    parseFails("SELECT 'abc FROM t", /^unterminated string at line 1, column 8$/);
    parseFails("SELECT 'multi\nline' AS s,\n  - FROM t", /^unexpected 'FROM' at line 3, column 5$/);
    parseFails('SELECT a[0..2] FROM t', /^slice indexes are 1-based; 0 is not an index at line 1, column 8$/);
    parseFails('SELECT a # b FROM t', /^unexpected character '#' at line 1, column 10$/);
    parseFails('SELECT FROM t', /^expected a field but found 'FROM' at line 1, column 8$/);
    parseFails('SELECT * FROM t WHERE', /^unexpected end of input at line 1, column 22$/);
    parseFails('SELECT * FROM t WHERE a = 1 b', /^unexpected name b at line 1, column 29$/);
    parseFails(`SELECT ${'('.repeat(600)}1${')'.repeat(600)} FROM t`, /nested too deeply/);
    parseFails(`SELECT 1${' + 1'.repeat(600)} FROM t`, /nested too deeply/);
    parseFails(`SELECT * FROM t WHERE a${' and a'.repeat(600)}`, /nested too deeply/);
  });

  it('parsePath splits template paths', () => {
    assert.deepEqual(parsePath('payload.a.b'), ['payload', 'a', 'b']);
    assert.deepEqual(parsePath("pub_props.'User-Property'"), ['pub_props', 'User-Property']);
    assert.deepEqual(parsePath('a[1].b[-2]'), ['a', 1, 'b', -2]);
    assert.deepEqual(parsePath(' "x.y".1 '), ['x.y', '1']);
    assert.deepEqual(parsePath("a.'it''s'"), ['a', "it's"]);
    assert.deepEqual(parsePath('clientid'), ['clientid']);
    for (const bad of ['', 'a..b', 'a.', 'a[x]', 'a[1', "a.'b", 'a[1]b']) {
      assert.throws(() => parsePath(bad), (e: unknown) => e instanceof TributaryError && e.code === 'SQL_PARSE_ERROR', bad);
    }
  });
});
