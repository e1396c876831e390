import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ValidationError } from '@tributary/common';
import { compileSqlTemplate, compileTemplate } from '../src/template';
import type { ValueMap } from '@tributary/rulesql';

const data: ValueMap = {
  clientid: 'c1',
  qos: 1,
  retain: false,
  payload: '{"a":{"b":[10,20,{"c":"deep"}]},"s":"text","n":null}',
  pub_props: { 'User-Property': { k: 'v', 'with space': 'yes' } },
  list: ['x', 'y', 'z'],
  bytes: Buffer.from([0xff, 0x00, 0x41]),
  json_bytes: Buffer.from('{"k":7}'),
  nested: { 'dotted.key': 1, '1': 'one' },
};

describe('templates', () => {
  it('renders fields, nested payload paths (decoding the JSON text) and quoted names', () => {
    const cases: [string, string][] = [
      ['${clientid}', 'c1'],
      ['qos=${qos} retain=${retain}', 'qos=1 retain=false'],
      ['${payload.a.b}', '[10,20,{"c":"deep"}]'],
      ['${payload.a.b[3].c}', 'deep'],
      ['${payload.a.b.2}', '20'],
      ['${payload.s}', 'text'],
      ['${payload.n}', 'null'],
      ["${pub_props.'User-Property'}", '{"k":"v","with space":"yes"}'],
      ["${pub_props.'User-Property'.'with space'}", 'yes'],
      ['${list[1]}${list[-1]}', 'xz'],
      ['${json_bytes.k}', '7'],
      ["${nested.'dotted.key'}", '1'],
      ['${nested.1}', 'one'],
      ['${ clientid }', 'c1'],
      ['${.payload.s}', 'text'],
      ['${.clientid}', 'c1'],
      ['no placeholders', 'no placeholders'],
      ['unclosed ${clientid', 'unclosed ${clientid'],
    ];
    for (const [text, want] of cases) assert.equal(compileTemplate(text).render(data), want, text);
  });

  it('renders missing values as "undefined", including paths into text that is not JSON', () => {
    for (const text of ['${nope}', '${payload.nope}', '${payload.s.x}', '${clientid.x}', '${list[4]}', '${list[0]}', '${qos.a}', '${bytes.a}']) {
      assert.equal(compileTemplate(text).render(data), 'undefined', text);
      assert.equal(compileTemplate(text).value(data), undefined, text);
    }
    assert.equal(compileTemplate('a-${nope}-b').render(data), 'a-undefined-b');
  });

  it('gives ${.} as the whole data map in JSON, bytes as their text', () => {
    const small: ValueMap = { a: 1, b: 'x', m: { c: [true, null] }, u: undefined };
    assert.deepEqual(JSON.parse(compileTemplate('${.}').render(small)), { a: 1, b: 'x', m: { c: [true, null] }, u: null });
    assert.deepEqual(compileTemplate('${.}').value(small), small);
  });

  it('gives the raw value for a template that is one placeholder, text otherwise', () => {
    assert.equal(compileTemplate('${qos}').value(data), 1);
    assert.equal(compileTemplate('${retain}').value(data), false);
    assert.deepEqual(compileTemplate('${payload.a.b[3]}').value(data), { c: 'deep' });
    assert.ok(Buffer.isBuffer(compileTemplate('${bytes}').value(data)));
    assert.equal(compileTemplate('${qos}!').value(data), '1!');
    assert.equal(compileTemplate('q').value(data), 'q');
  });

  it('lists its placeholders', () => {
    assert.deepEqual(compileTemplate('${a}/${ payload.b[1] }/${.}').placeholders, ['a', 'payload.b[1]', '.']);
    assert.deepEqual(compileTemplate('plain').placeholders, []);
  });

  it('refuses malformed placeholders, naming them', () => {
    for (const bad of ['${}', '${a[x]}', "${a.'open}", '${a..b}', '${a[1]b}']) {
      assert.throws(() => compileTemplate(bad), (err: unknown) => err instanceof ValidationError && err.code === 'INVALID_ARGUMENT' && err.message.includes('template placeholder'), bad);
    }
  });
});

describe('SQL templates', () => {
  it("turns each placeholder into a bind parameter, EMQX's default insert included", () => {
    const t = compileSqlTemplate('insert into t_mqtt_msg(msgid, topic, qos, payload, arrived) values (${id}, ${topic}, ${qos}, ${payload}, TO_TIMESTAMP((${timestamp} :: bigint)/1000))');
    assert.equal(t.text, 'insert into t_mqtt_msg(msgid, topic, qos, payload, arrived) values ($1, $2, $3, $4, TO_TIMESTAMP(($5 :: bigint)/1000))');
    assert.deepEqual(t.params({ id: 'm1', topic: 't/1', qos: 1, payload: "x'); drop table t; --", timestamp: 1700000000000 }), ['m1', 't/1', 1, "x'); drop table t; --", 1700000000000]);
    assert.ok(t.multiRow);
    assert.equal(t.textForRows(2), 'insert into t_mqtt_msg(msgid, topic, qos, payload, arrived) values ($1, $2, $3, $4, TO_TIMESTAMP(($5 :: bigint)/1000)), ($6, $7, $8, $9, TO_TIMESTAMP(($10 :: bigint)/1000))');
  });

  it('binds undefined as NULL, maps and arrays as JSON text, bytes as they are', () => {
    const t = compileSqlTemplate('insert into t values (${nope}, ${m}, ${a}, ${b}, ${n}, ${payload.x})');
    const b = Buffer.from([1, 2]);
    assert.deepEqual(t.params({ m: { k: 1 }, a: [1, 'x'], b, n: null, payload: '{"x":true}' }), [null, '{"k":1}', '[1,"x"]', b, null, true]);
  });

  it('binds placeholders inside quoted literals as text, splitting the literal', () => {
    const t = compileSqlTemplate("insert into t(a, b, c) values ('${id}', 'dev-${clientid}-''x''', 'plain ${')");
    assert.equal(t.text, "insert into t(a, b, c) values ($1, ('dev-' || $2 || '-''x'''), 'plain ${')");
    assert.deepEqual(t.params({ id: 7, clientid: undefined }), ['7', 'undefined']);
    assert.equal(compileSqlTemplate("select 'a ${' || '}'").text, "select 'a ${' || '}'");
  });

  it('leaves comments alone and keeps text after the tuple in multi-row inserts', () => {
    const t = compileSqlTemplate('insert into t(a) values (${a}) -- ${not_a_param}\n on conflict (a) do nothing');
    assert.equal(t.text, 'insert into t(a) values ($1) -- ${not_a_param}\n on conflict (a) do nothing');
    assert.equal(t.textForRows(3), 'insert into t(a) values ($1), ($2), ($3) -- ${not_a_param}\n on conflict (a) do nothing');
  });

  it('is multi-row only for a single-tuple INSERT with every placeholder in the tuple', () => {
    assert.equal(compileSqlTemplate('update t set a = ${a} where id = ${id}').multiRow, false);
    assert.equal(compileSqlTemplate('insert into t(a) values (${a}), (${b})').multiRow, false);
    assert.equal(compileSqlTemplate('insert into t(a) values (${a}) on conflict (a) do update set b = ${b}').multiRow, false);
    assert.equal(compileSqlTemplate('insert into t(a) select ${a}').multiRow, false);
    assert.throws(() => compileSqlTemplate('update t set a = ${a}').textForRows(2), ValidationError);
  });

  it('refuses what cannot be a bind parameter', () => {
    for (const bad of ['select "${x}" from t', 'select $1', 'do $$ begin perform ${x}; end $$', "select 'open", 'select a)']) {
      assert.throws(() => compileSqlTemplate(bad), (err: unknown) => err instanceof ValidationError && err.message.startsWith('SQL template:'), bad);
    }
  });
});
