import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { FunctionSpec } from '../src/functions/types';
import { evaluate, fromMatches, getPath, parsePath, parseSql, type ParseOptions } from '../src/sql';
import { RuleEvalError, type Value, type ValueMap } from '../src/value';

let calls = 0;
/** Functions of the tests' own, in the FunctionSpec shape (the real library is elsewhere). */
const FUNCTIONS: Record<string, FunctionSpec> = {
  lower: { arity: [1], fn: ([s]) => String(s).toLowerCase() },
  upper: { arity: [1], fn: ([s]) => String(s).toUpperCase() },
  concat: { arity: [2], fn: ([a, b]) => String(a) + String(b) },
  nth: { arity: [2], fn: ([n, l]) => (Array.isArray(l) && typeof n === 'number' ? l[n - 1] : undefined) },
  /** Counts its calls (how often a clause runs). */
  tick: { arity: [0], fn: () => ++calls },
  /** What functions see of the evaluation. */
  ctx: { arity: [0], fn: (_a, c) => ({ rule: c.ruleId, clientid: c.event['clientid'] }) },
  boom: { arity: [0], fn: () => { throw new TypeError('kaput'); } },
  refuse: { arity: [0], fn: () => { throw new RuleEvalError('bad_sql_function_argument', 'refused'); } },
};
const opts: ParseOptions = { functions: (name) => FUNCTIONS[name] };

function event(extra: ValueMap = {}): ValueMap {
  return {
    id: 'm1',
    clientid: 'c1',
    username: 'u1',
    topic: 't/a',
    qos: 1,
    flags: { retain: false, dup: false },
    payload: JSON.stringify({ a: { b: [10, 20, 30] }, s: '2', n: 5, cmd: { info: 'hi' }, list: [1, 2], sensors: [{ v: 1 }, { v: 2 }, { v: 3 }] }),
    pub_props: { 'User-Property': { foo: 'bar' } },
    timestamp: 1700000000000,
    ...extra,
  };
}

function run(sql: string, ev: ValueMap = event()): ValueMap[] | undefined {
  return evaluate(parseSql(sql, opts), ev, { ruleId: 'rule-1' });
}
/** The single row of a SELECT. */
function row(sql: string, ev?: ValueMap): ValueMap {
  const rows = run(sql, ev);
  assert.ok(rows, `no result for ${sql}`);
  assert.equal(rows.length, 1);
  return rows[0] as ValueMap;
}
/** One expression's value. */
function val(expr: string, ev?: ValueMap): Value {
  return row(`SELECT ${expr} AS v FROM "t/#"`, ev)['v'];
}
/** Does WHERE `cond` let the event through? */
function where(cond: string, ev?: ValueMap): boolean {
  return run(`SELECT 1 AS x FROM "t/#" WHERE ${cond}`, ev) !== undefined;
}
/** Each condition, as a WHERE, lets the event through or not. */
function whereCases(cases: readonly (readonly [string, boolean])[], ev?: ValueMap): void {
  for (const [cond, expected] of cases) assert.equal(where(cond, ev), expected, cond);
}
function evalFails(sql: string, reason: string, ev?: ValueMap): void {
  assert.throws(
    () => run(sql, ev),
    (e: unknown) => {
      assert.ok(e instanceof RuleEvalError, String(e));
      assert.equal(e.code, 'SQL_EVAL_ERROR');
      assert.equal(e.reason, reason);
      assert.ok(e.message.startsWith(reason), e.message);
      return true;
    },
  );
}

describe('rule SQL evaluation: fields', () => {
  it('* copies every column and adds metadata.rule_id', () => {
    const ev = event();
    const r = row('SELECT * FROM "t/#"', ev);
    assert.deepEqual(r, { ...ev, metadata: { rule_id: 'rule-1' } });
    assert.deepEqual(row('SELECT *, clientid AS cid FROM "t/#"')['cid'], 'c1');
  });

  it('without *, metadata is there only when selected by name', () => {
    assert.deepEqual(row('SELECT clientid FROM "t/#"'), { clientid: 'c1' });
    assert.deepEqual(row('SELECT metadata FROM "t/#"'), { metadata: { rule_id: 'rule-1' } });
    assert.deepEqual(row('SELECT metadata.rule_id AS r FROM "t/#"'), { r: 'rule-1' });
  });

  it('AS is optional; fields without it keep their name, path, string or SQL text', () => {
    assert.deepEqual(row("SELECT clientid cid, username, payload.a.b, 'lit', upper(clientid), 1 + 2 FROM \"t/#\""), {
      cid: 'c1',
      username: 'u1',
      payload: { a: { b: [10, 20, 30] } },
      lit: 'lit',
      'upper(clientid)': 'C1',
      '1 + 2': 3,
    });
  });

  it('a selected field that is missing is still a key (undefined)', () => {
    const r = row('SELECT nothing, payload.none AS x FROM "t/#"');
    assert.deepEqual(Object.keys(r), ['nothing', 'x']);
    assert.equal(r['nothing'], undefined);
  });

  it('nested AS targets create and merge maps, [-0] appends, [0] prepends', () => {
    assert.deepEqual(row('SELECT 1 AS a.b, 2 AS a.c, 3 AS c[-0], 4 AS c[-0], 0 AS c[0] FROM "t/#"'), { a: { b: 1, c: 2 }, c: [0, 3, 4] });
    assert.deepEqual(row('SELECT 0 AS payload.x[2].y FROM "t/#"')['payload'], { x: [{ y: 0 }] });
    assert.deepEqual(row('SELECT payload.list AS l, 9 AS l[2], 8 AS l[-1], 7 AS l[5] FROM "t/#"')['l'], [1, 8], 'in range replaces, out of range changes nothing');
  });

  it('an AS target inside payload merges into the decoded payload, without touching the event', () => {
    const ev = event();
    const before = JSON.stringify(ev);
    const r = row('SELECT *, 1 AS payload.a.z FROM "t/#" WHERE payload.a.z = 1 AND payload.n = 5', ev);
    const p = r['payload'] as ValueMap;
    assert.deepEqual(p['a'], { b: [10, 20, 30], z: 1 });
    assert.equal(p['n'], 5);
    assert.equal(JSON.stringify(ev), before, 'the event is not modified');
  });

  it('later fields and WHERE see earlier aliases', () => {
    assert.deepEqual(row('SELECT payload.cmd AS cmd, cmd.info AS info, upper(info) AS loud FROM "t/#"'), { cmd: { info: 'hi' }, info: 'hi', loud: 'HI' });
    assert.deepEqual(run("SELECT payload.cmd.info AS i FROM \"t/#\" WHERE i = 'hi'"), [{ i: 'hi' }]);
    assert.ok(run('SELECT payload.s AS page FROM "t/#" WHERE page = 2'));
    assert.equal(run('SELECT payload.s AS page FROM "t/#" WHERE page = 3'), undefined);
    assert.ok(run('SELECT 5 AS qos FROM "t/#" WHERE qos = 5'), 'an alias shadows a column');
  });

  it('keywords are case-insensitive and comments are skipped', () => {
    assert.deepEqual(run('select clientid -- who\nfrom "t/#" -- where\nwhere qos = 1'), [{ clientid: 'c1' }]);
  });
});

describe('rule SQL evaluation: FOREACH', () => {
  it('FOREACH ... DO ... INCASE gives one row per kept item', () => {
    assert.deepEqual(run('FOREACH payload.sensors AS s DO s.v AS v, clientid INCASE s.v >= 2 FROM "t/#"'), [
      { v: 2, clientid: 'c1' },
      { v: 3, clientid: 'c1' },
    ]);
  });

  it('the default item alias is item; without DO a row is every column plus the item', () => {
    const ev = event();
    const rows = run('FOREACH payload.sensors FROM "t/#"', ev);
    assert.equal(rows?.length, 3);
    assert.deepEqual(rows?.[0], { ...ev, metadata: { rule_id: 'rule-1' }, item: { v: 1 } });
    assert.deepEqual(run('FOREACH payload.list DO item + 1 AS x FROM "t/#"'), [{ x: 2 }, { x: 3 }]);
  });

  it('a JSON-array payload is decoded', () => {
    assert.deepEqual(run('FOREACH payload DO item.k AS k FROM "t/#"', event({ payload: '[{"k":1},{"k":2}]' })), [{ k: 1 }, { k: 2 }]);
  });

  it('an empty list, a non-list, or every item filtered out is no result', () => {
    assert.equal(run('FOREACH payload.none FROM "t/#"'), undefined);
    assert.equal(run('FOREACH payload.n FROM "t/#"'), undefined);
    assert.equal(run('FOREACH payload FROM "t/#"', event({ payload: '[]' })), undefined);
    assert.equal(run('FOREACH payload.list INCASE item > 5 FROM "t/#"'), undefined);
  });

  it('WHERE runs once, before the items, and sees the FOREACH aliases', () => {
    calls = 0;
    const sql = 'FOREACH payload AS p, p.sensors AS s DO s.v AS v FROM "t/#" WHERE tick() > 0 AND p.s = \'2\' AND s[1].v = 1';
    assert.deepEqual(run(sql), [{ v: 1 }, { v: 2 }, { v: 3 }]);
    assert.equal(calls, 1);
    assert.equal(run('FOREACH payload AS p, p.sensors AS s FROM "t/#" WHERE p.s = \'3\''), undefined);
  });

  it('INCASE sees the item alias but not the DO aliases; items do not see FOREACH aliases (EMQX)', () => {
    assert.equal(run('FOREACH payload.list AS x DO 5 AS five INCASE five = 5 FROM "t/#"'), undefined);
    assert.deepEqual(run('FOREACH payload AS p, p.list AS x DO x, p FROM "t/#"'), [
      { x: 1, p: undefined },
      { x: 2, p: undefined },
    ]);
  });

  it('DO takes * and aliases of its own', () => {
    const rows = run('FOREACH payload.list AS x DO *, x * 10 AS y FROM "t/#"');
    assert.equal(rows?.[1]?.['y'], 20);
    assert.equal(rows?.[1]?.['x'], 2);
    assert.equal(rows?.[1]?.['clientid'], 'c1');
  });
});

describe('rule SQL evaluation: expressions', () => {
  it('CASE without a subject takes the first true WHEN; no ELSE and no match is undefined', () => {
    assert.equal(val("CASE WHEN qos = 0 THEN 'zero' WHEN qos = 1 THEN 'one' ELSE 'many' END"), 'one');
    assert.equal(val("CASE WHEN qos = 2 THEN 'two' ELSE 'other' END"), 'other');
    const r = row("SELECT CASE WHEN qos = 2 THEN 'two' END AS v FROM \"t/#\"");
    assert.ok(Object.hasOwn(r, 'v'));
    assert.equal(r['v'], undefined);
  });

  it('CASE x WHEN v compares exactly (no string-number coercion)', () => {
    assert.equal(val("CASE payload.s WHEN 2 THEN 'num' WHEN '2' THEN 'str' END"), 'str');
    assert.equal(val("CASE WHEN payload.s = 2 THEN 'coerced' END"), 'coerced');
    assert.equal(val("CASE qos WHEN 0 THEN 'a' END"), undefined);
  });

  it('arithmetic follows precedence and associativity', () => {
    assert.equal(val('1 + 2 * 3'), 7);
    assert.equal(val('(1 + 2) * 3'), 9);
    assert.equal(val('10 - 2 - 3'), 5);
    assert.equal(val('-qos * 3'), -3);
    assert.equal(val('2 * 3 mod 4'), 2);
    assert.equal(val('- (1 + 2)'), -3);
    assert.equal(where('1 + 1 = 2 and 2 * 2 = 4 or 1 = 0'), true);
    assert.equal(where('1 = 0 and 1 = 1 or 2 = 2'), true);
    assert.equal(where('1 = 0 and (1 = 1 or 2 = 2)'), false);
  });

  it('long operator chains and deep nesting evaluate', () => {
    assert.equal(val(`0${' + 1'.repeat(400)}`), 400);
    assert.equal(val(`${'('.repeat(300)}qos${')'.repeat(300)}`), 1);
    assert.equal(where(`qos = 1${' and qos = 1'.repeat(300)}`), true);
  });

  it('+ adds numbers and concatenates when either side is a string', () => {
    assert.equal(val('qos + 1'), 2);
    assert.equal(val("'q' + qos"), 'q1');
    assert.equal(val("qos + 'q'"), '1q');
    assert.equal(val("'f=' + flags"), 'f={"retain":false,"dup":false}');
    assert.equal(val("'a' + missing"), 'aundefined');
    evalFails('SELECT true + 1 AS v FROM "t/#"', 'bad_sql_function_argument');
    evalFails('SELECT missing - 1 AS v FROM "t/#"', 'bad_sql_function_argument');
    evalFails("SELECT -'x' AS v FROM \"t/#\"", 'bad_sql_function_argument');
  });

  it('/ divides as floats; div and mod take integers only', () => {
    assert.equal(val('7 / 2'), 3.5);
    assert.equal(val('7 div 2'), 3);
    assert.equal(val('-7 div 2'), -3);
    assert.equal(val('-7 mod 2'), -1);
    assert.equal(val('7 mod -2'), 1);
    assert.ok(Object.is(val('-4 mod 2'), 0));
    evalFails('SELECT 7.5 div 2 AS v FROM "t/#"', 'bad_sql_function_argument');
    evalFails("SELECT '7' mod 2 AS v FROM \"t/#\"", 'bad_sql_function_argument');
    evalFails('SELECT 1 / 0 AS v FROM "t/#"', 'badarith');
    evalFails('SELECT 1 div 0 AS v FROM "t/#"', 'badarith');
  });

  it('a number against a string reads the string as a number; non-numeric text is an error', () => {
    whereCases([
      ['payload.s = 2', true],
      ["'10' > 9", true],
      ["qos = '1.0'", true],
      ["qos < '-1.5e2'", false],
    ]);
    evalFails('SELECT 1 AS x FROM "t/#" WHERE clientid = 1', 'badarg');
    evalFails("SELECT 1 AS x FROM \"t/#\" WHERE qos = '1e3'", 'badarg');
  });

  it('= is loose, strings compare as text, booleans and null as their names', () => {
    whereCases([
      ['1 = 1.0', true],
      ["clientid = 'c1'", true],
      ["clientid <> 'c2'", true],
      ["flags.retain = 'false'", true],
      ['flags.retain = false', true],
      ["'abc' < 'abd' and 'b' > 'abc'", true],
      ['payload.a = payload.a', true],
    ]);
  });

  it('undefined = undefined is true; any other comparison with undefined is false, != too', () => {
    whereCases([
      ['nothing = missing', true],
      ['nothing = 1', false],
      ['nothing != 1', false],
      ["nothing <> 'x'", false],
      ['nothing < 1', false],
      ['1 > nothing', false],
      ["nothing =~ 't/#'", false],
    ]);
  });

  it('"double" quotes name a variable, so clientid = "c1" looks up a column c1', () => {
    assert.equal(where('clientid = "c1"'), false);
    assert.equal(where('clientid = "c1"', event({ c1: 'c1' })), true);
  });

  it('=~ matches the topic against a filter', () => {
    whereCases([
      ["topic =~ 't/#'", true],
      ["topic =~ 't/+'", true],
      ["topic =~ 'x/#'", false],
      ["qos =~ '#'", false],
    ]);
  });

  it('IN is exact membership; NOT IN its negation', () => {
    whereCases([
      ['qos in (0, 1)', true],
      ["qos in ('1')", false],
      ["payload.s in (2)", false],
      ["clientid in (lower('C1'))", true],
      ['payload.list in ([1, 2])', true],
      ['qos not in (0, 2)', true],
      ['qos not in (1)', false],
    ]);
  });

  it('NOT of a non-boolean is false', () => {
    whereCases([
      ['not false', true],
      ['not (qos = 2)', true],
      ["not 'x'", false],
      ['not qos', false],
      ['not nothing', false],
      ['qos', false], // WHERE needs true, not a truthy value
    ]);
  });

  it('literals: strings, numbers, booleans, lists of expressions, inclusive ranges', () => {
    assert.equal(val("'it''s'"), "it's");
    assert.equal(val('1.5e1'), 15);
    assert.equal(val('true'), true);
    assert.deepEqual(val("[1, qos + 1, 'x', upper(clientid), [true]]"), [1, 2, 'x', 'C1', [true]]);
    assert.deepEqual(val('[1..4]'), [1, 2, 3, 4]);
    assert.deepEqual(val('[-1..1]'), [-1, 0, 1]);
    assert.deepEqual(val('[]'), []);
  });

  it('slices are 1-based and inclusive, negative from the end, clipped to the list', () => {
    assert.deepEqual(val('payload.a.b[1..2]'), [10, 20]);
    assert.deepEqual(val('payload.a.b[2..-1]'), [20, 30]);
    assert.deepEqual(val('payload.a.b[-2..-1]'), [20, 30]);
    assert.deepEqual(val('payload.a.b[2..9]'), [20, 30]);
    assert.deepEqual(val('payload.a.b[3..2]'), []);
    assert.deepEqual(row('SELECT payload.list AS xs, xs[2..2] FROM "t/#"')['xs'], [2], 'an unaliased slice goes to its list');
    evalFails('SELECT qos[1..2] AS v FROM "t/#"', 'bad_sql_function_argument');
  });

  it('paths: keys, quoted keys, digit keys, 1-based and negative indexes, computed indexes', () => {
    assert.equal(val("pub_props.'User-Property'.foo"), 'bar');
    assert.equal(val('payload.a.b[1]'), 10);
    assert.equal(val('payload.a.b[-1]'), 30);
    assert.equal(val('payload.a.b[0]'), undefined);
    assert.equal(val('payload.a.b[4]'), undefined);
    assert.equal(val('payload.a.b[-4]'), undefined);
    assert.equal(val('payload.a.b[payload.list[2]]'), 20);
    assert.equal(val('payload.a.b[i]', event({ i: 3 })), 30);
    assert.equal(val('payload.a.b[i]', event({ i: '3' })), undefined, 'an index must be an integer');
    assert.equal(val('m.1.x', event({ m: { 1: { x: 'one' } } })), 'one');
    assert.equal(val('payload.a.b.c'), undefined);
    assert.equal(val('flags.constructor'), undefined, 'no prototype keys');
  });

  it('payload. paths decode the payload once per evaluation; payload alone stays raw', () => {
    const ev = event();
    const realParse = JSON.parse;
    let parses = 0;
    JSON.parse = ((text: string, reviver?: (k: string, v: unknown) => unknown) => {
      parses++;
      return realParse(text, reviver);
    }) as typeof JSON.parse;
    let r: ValueMap;
    try {
      r = row('SELECT payload.a.b[1] AS x, payload.n AS n, payload FROM "t/#" WHERE payload.s = 2', ev);
    } finally {
      JSON.parse = realParse;
    }
    assert.equal(parses, 1);
    assert.equal(r['x'], 10);
    assert.equal(r['n'], 5);
    assert.equal(r['payload'], ev['payload']);
    assert.equal(val('payload.k', event({ payload: Buffer.from('{"k":"buf"}') })), 'buf', 'a Buffer payload decodes too');
  });

  it('invalid JSON fails a payload. path with decode_json_failed; payload alone still works', () => {
    evalFails('SELECT payload.a AS a FROM "t/#"', 'decode_json_failed', event({ payload: 'not json' }));
    evalFails('SELECT 1 AS x FROM "t/#" WHERE payload.a = 1', 'decode_json_failed', event({ payload: '{"a":' }));
    assert.equal(val('payload', event({ payload: 'not json' })), 'not json');
    assert.equal(run('SELECT payload.a AS a FROM "t/#"', event({ payload: undefined }))?.[0]?.['a'], undefined);
  });

  it('a path into a string value that is JSON decodes it; other strings give undefined', () => {
    assert.equal(val('j.b[2]', event({ j: '{"b":[1,2]}' })), 2);
    assert.equal(val('j.b', event({ j: 'plain words' })), undefined);
    assert.equal(val('j.b', event({ j: '{broken' })), undefined);
    assert.equal(val('payload.inner.x', event({ payload: JSON.stringify({ inner: '{"x":7}' }) })), 7);
  });

  it('functions get their arguments and the evaluation context; their errors become RuleEvalError', () => {
    assert.equal(val("concat(lower('AB'), nth(2, payload.list))"), 'ab2');
    assert.deepEqual(val('ctx()'), { rule: 'rule-1', clientid: 'c1' });
    evalFails('SELECT boom() AS v FROM "t/#"', 'bad_sql_function_argument');
    assert.throws(() => run('SELECT boom() AS v FROM "t/#"'), /boom: kaput/);
    assert.throws(() => run('SELECT refuse() FROM "t/#"'), (e: unknown) => e instanceof RuleEvalError && e.message === 'bad_sql_function_argument: refused');
  });

  it('evaluating the same statement twice gives independent rows', () => {
    const stmt = parseSql('SELECT 1 AS c[-0], [1..2] AS r FROM "t/#"', opts);
    const a = evaluate(stmt, event(), { ruleId: 'x' }) as ValueMap[];
    ((a[0] as ValueMap)['r'] as Value[]).push(3);
    const b = evaluate(stmt, event(), { ruleId: 'y' }) as ValueMap[];
    assert.deepEqual(b, [{ c: [1], r: [1, 2] }]);
  });
});

describe('rule SQL: FROM matching and template paths', () => {
  it('topic filters match with MQTT rules; $events and $sources entries by name', () => {
    const s = parseSql('SELECT * FROM "t/+/x", "a/#", "$events/client_connected", "$sources/mqtt:in"', opts);
    assert.equal(fromMatches(s, 't/1/x'), true);
    assert.equal(fromMatches(s, 't/1/y'), false);
    assert.equal(fromMatches(s, 'a'), true);
    assert.equal(fromMatches(s, 'a/b/c'), true);
    assert.equal(fromMatches(s, '$events/client_connected'), true);
    assert.equal(fromMatches(s, '$events/client_disconnected'), false);
    assert.equal(fromMatches(s, '$sources/mqtt:in'), true);
    const all = parseSql('SELECT * FROM "#"', opts);
    assert.equal(fromMatches(all, 'x/y'), true);
    assert.equal(fromMatches(all, '$events/client_connected'), false, '# does not match $ names');
  });

  it('getPath looks up like SQL paths, 1-based, decoding JSON text, never throwing', () => {
    const ev = event();
    assert.equal(getPath(ev, parsePath('payload.a.b[2]')), 20);
    assert.equal(getPath(ev, ['payload', 'a', 'b', -1]), 30);
    assert.equal(getPath(ev, parsePath("pub_props.'User-Property'.foo")), 'bar');
    assert.equal(getPath(ev, ['clientid']), 'c1');
    assert.equal(getPath(ev, ['payload']), ev['payload']);
    assert.equal(getPath(ev, ['payload', 'a', 'b', 0]), undefined);
    assert.equal(getPath({ payload: 'not json' }, ['payload', 'a']), undefined);
    assert.equal(getPath({ m: { 1: 'x' } }, parsePath('m.1')), 'x');
    assert.equal(getPath(ev, ['flags', 'toString']), undefined);
  });
});
