import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { call, fails } from './functions-util';

describe('map functions', () => {
  it('map_get follows a dotted key path, with a default; the map may be JSON text', () => {
    assert.equal(call('map_get', 'msg', call('json_decode', '{"msg": "hello"}')), 'hello');
    assert.equal(call('map_get', 'data', call('json_decode', '{"msg": "hello"}')), undefined);
    assert.equal(call('map_get', 'data', call('json_decode', '{"msg": "hello"}'), ''), '');
    assert.deepEqual(call('map_get', 'value', call('json_decode', '{"data": [1.2, 1.3]}'), []), []);
    assert.equal(call('map_get', 'a', { a: 1 }), 1);
    assert.equal(call('map_get', 'a.b', { a: { b: 1 } }), 1);
    assert.equal(call('map_get', 'a.c', { a: { b: 1 } }), undefined);
    assert.equal(call('map_get', 'b', call('json_decode', '{ "a" : 1 }'), 2), 2);
    assert.equal(call('map_get', 'a', '{"a": 1}'), 1);
    assert.equal(call('map_get', 'a', 'not json', 0), 0);
    // A key present with JSON null is not missing.
    assert.equal(call('map_get', 'b', { b: null }, 5), null);
  });

  it('map_put sets at a dotted path, creating maps, without changing its argument', () => {
    assert.deepEqual(call('map_put', 'a', 1, {}), { a: 1 });
    assert.deepEqual(call('map_put', 'a', 2, { a: 1 }), { a: 2 });
    assert.deepEqual(call('map_put', 'a.b', 1, {}), { a: { b: 1 } });
    const orig = { a: { b: 1 } };
    assert.deepEqual(call('map_put', 'a.c', 1, orig), { a: { b: 1, c: 1 } });
    assert.deepEqual(orig, { a: { b: 1 } });
    assert.equal(call('map_get', 'b', call('map_put', 'b', 1, call('json_decode', '{"a": 1}'))), 1);
    assert.equal(call('map_get', 'a', call('map_put', 'a', 2, call('json_decode', '{"a": 1}'))), 2);
    assert.deepEqual(call('map_put', 'x', 1, undefined), { x: 1 });
    // __proto__ is an ordinary key.
    const m = call('map_put', '__proto__', 1, {}) as Record<string, unknown>;
    assert.deepEqual(Object.keys(m), ['__proto__']);
    assert.equal(Object.getPrototypeOf(m), Object.prototype);
  });

  it('mget and mput take a literal key (or an array of keys for a nested path)', () => {
    assert.equal(call('mget', 'a', { a: 1 }), 1);
    assert.equal(call('mget', 'a', '{"a" : 1}'), 1);
    assert.equal(call('mget', 'a.b', { 'a.b': 1 }), 1);
    assert.equal(call('mget', 'a', {}), undefined);
    assert.equal(call('mget', 'c', call('json_decode', '{"a": {"b": 1}}')), undefined);
    assert.equal(call('mget', ['a', 'b'], call('json_decode', '{"a": {"b": 1}}')), 1);
    assert.equal(call('mget', 'x', {}, 'dflt'), 'dflt');
    assert.deepEqual(call('mput', 'a', 1, {}), { a: 1 });
    assert.deepEqual(call('mput', 'a', 2, '{"a" : 1}'), { a: 2 });
    assert.deepEqual(call('mput', 'a.b', 2, { 'a.b': 1 }), { 'a.b': 2 });
    assert.equal(call('mget', ['a', 'b'], call('mput', ['a', 'b'], 2, call('json_decode', '{"a": {"b": 1}}'))), 2);
    assert.equal(call('mget', ['a', 'b'], call('mput', ['a', 'b'], 2, call('json_decode', '{"c": 1}'))), 2);
    fails(() => call('mget', 'a', 'not json'));
  });

  it('map_keys, map_values, map_to_entries and map_size (maps, JSON text, [key, value] pairs)', () => {
    assert.deepEqual(call('map_keys', call('json_decode', '{"a": 1, "b": 2}')), ['a', 'b']);
    assert.deepEqual(call('map_values', call('json_decode', '{"a": 1, "b": 2}')), [1, 2]);
    assert.deepEqual(call('map_to_entries', call('json_decode', '{"a": 1, "b": 2}')), [
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    assert.deepEqual(call('map_to_entries', {}), []);
    assert.deepEqual(call('map_to_entries', '{"a":1,"b":"b"}'), [
      { key: 'a', value: 1 },
      { key: 'b', value: 'b' },
    ]);
    assert.equal(call('map_size', call('json_decode', '{}')), 0);
    assert.equal(call('map_size', call('json_decode', '{"msg": "hello"}')), 1);
    assert.equal(call('map_size', []), 0);
    assert.equal(call('map_size', [['a', 'b']]), 1);
    assert.equal(call('map_size', '{"a" : "b"}'), 1);
    assert.deepEqual(call('map_new'), {});
    fails(() => call('map_keys', 1));
  });
});
