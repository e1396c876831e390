import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { call, fails } from './functions-util';

describe('array functions (1-based)', () => {
  it('nth, length, first, last', () => {
    assert.equal(call('nth', 2, [1, 2, 3, 4]), 2);
    assert.equal(call('nth', 4, [1, 2, 3, 4]), 4);
    assert.equal(call('nth', 1, [1, 2, 3]), 1);
    fails(() => call('nth', 0, [1, 2, 3]));
    fails(() => call('nth', 4, [1, 2, 3]));
    assert.equal(call('length', [1, 2, 3, 4]), 4);
    assert.equal(call('length', []), 0);
    fails(() => call('length', 'abc'));
    assert.equal(call('first', ['John', 'David']), 'John');
    assert.equal(call('last', ['John', 'David']), 'David');
    fails(() => call('first', []));
    fails(() => call('last', []));
  });

  it('sublist/2 takes the first N; sublist/3 N from a start (start = length + 1 is empty)', () => {
    assert.deepEqual(call('sublist', 3, [1, 2, 3, 4]), [1, 2, 3]);
    assert.deepEqual(call('sublist', 10, [1, 2, 3, 4]), [1, 2, 3, 4]);
    assert.deepEqual(call('sublist', 2, [1, 2, 3, 4]), [1, 2]);
    assert.deepEqual(call('sublist', 2, 10, [1, 2, 3, 4]), [2, 3, 4]);
    assert.deepEqual(call('sublist', 1, 2, [1, 2, 3, 4]), [1, 2]);
    assert.deepEqual(call('sublist', 4, 1, [1, 2, 3, 4]), [4]);
    assert.deepEqual(call('sublist', 4, 2, [1, 2, 3, 4]), [4]);
    assert.deepEqual(call('sublist', 5, 2, [1, 2, 3, 4]), []);
    assert.deepEqual(call('sublist', 2, 2, [1, 2, 3, 4]), [2, 3]);
    fails(() => call('sublist', 6, 1, [1, 2, 3, 4]));
    fails(() => call('sublist', -1, [1]));
  });

  it('contains compares by value, deeply', () => {
    assert.equal(call('contains', 2, [1, 2, 3]), true);
    assert.equal(call('contains', 2.3, [1.8, 2.5, 2.0]), false);
    assert.equal(call('contains', 'John', ['John', 'David']), true);
    assert.equal(call('contains', [1, 2], ['a', 'b', [1, 2]]), true);
    assert.equal(call('contains', call('json_decode', '{"a": 1}'), [call('json_decode', '{"a": 1}'), call('json_decode', '{"b": 2}')]), true);
    assert.equal(call('contains', { a: 'b' }, [{ a: 1 }]), false);
    assert.equal(call('contains', 'c', ['', 'ab', 3, 'a']), false);
    fails(() => call('contains', 1, 'abc'));
  });
});
