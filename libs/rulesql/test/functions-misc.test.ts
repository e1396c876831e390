import { strict as assert } from 'node:assert';
import { afterEach, describe, it } from 'node:test';
import { lookupFunction, resetFunctionState } from '../src/functions';
import type { Value } from '../src/value';
import { call, fails } from './functions-util';

function inRule(ruleId: string, name: string, ...args: Value[]): Value {
  const spec = lookupFunction(name);
  assert.ok(spec);
  return spec.fn(args, { event: {}, ruleId });
}

describe('uuid, getenv, proc_dict and kv_store', () => {
  afterEach(() => resetFunctionState());

  it('uuid_v4 is a random version-4 UUID, with or without hyphens', () => {
    const a = call('uuid_v4') as string;
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(call('uuid_v4'), a);
    assert.match(call('uuid_v4_no_hyphen') as string, /^[0-9a-f]{12}4[0-9a-f]{19}$/);
    assert.equal(call('strlen', call('uuid_v4')), 36);
    assert.equal(call('strlen', call('uuid_v4_no_hyphen')), 32);
  });

  it("getenv('X') reads EMQXVAR_X once ('' when unset)", () => {
    process.env.EMQXVAR_FOO_BAR = 'v1';
    try {
      assert.equal(call('getenv', 'FOO_BAR'), 'v1');
      process.env.EMQXVAR_FOO_BAR = 'v2';
      assert.equal(call('getenv', 'FOO_BAR'), 'v1');
      assert.equal(call('getenv', 'NOT_SET_ANYWHERE_123'), '');
      assert.equal(call('getenv', 'PATH'), process.env.EMQXVAR_PATH ?? '');
    } finally {
      delete process.env.EMQXVAR_FOO_BAR;
    }
  });

  it("proc_dict_* is each rule's own dictionary; put and del return the old value", () => {
    assert.equal(inRule('r1', 'proc_dict_get', 'abc'), undefined);
    assert.equal(inRule('r1', 'proc_dict_put', 'abc', 1), undefined);
    assert.equal(inRule('r1', 'proc_dict_get', 'abc'), 1);
    assert.equal(inRule('r2', 'proc_dict_get', 'abc'), undefined);
    assert.equal(inRule('r1', 'proc_dict_put', 'abc', { n: 2 }), 1);
    assert.deepEqual(inRule('r1', 'proc_dict_get', 'abc'), { n: 2 });
    // Keys compare by value and type: 1 and '1' are two keys.
    inRule('r1', 'proc_dict_put', 1, 'int');
    assert.equal(inRule('r1', 'proc_dict_get', '1'), undefined);
    assert.equal(inRule('r1', 'proc_dict_get', 1), 'int');
    assert.deepEqual(inRule('r1', 'proc_dict_del', 'abc'), { n: 2 });
    assert.equal(inRule('r1', 'proc_dict_get', 'abc'), undefined);
  });

  it('kv_store_* is shared by every rule, with a default for missing keys', () => {
    assert.equal(inRule('r1', 'kv_store_get', 'k'), undefined);
    assert.equal(inRule('r1', 'kv_store_get', 'k', 'dflt'), 'dflt');
    assert.equal(inRule('r1', 'kv_store_put', 'k', [1, 2]), true);
    assert.deepEqual(inRule('r2', 'kv_store_get', 'k'), [1, 2]);
    assert.deepEqual(inRule('r2', 'kv_store_get', Buffer.from('k')), [1, 2]);
    assert.equal(inRule('r2', 'kv_store_del', 'k'), true);
    assert.equal(inRule('r1', 'kv_store_get', 'k', 0), 0);
    fails(() => call('getenv', undefined));
  });
});
