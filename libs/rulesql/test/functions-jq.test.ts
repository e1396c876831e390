import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { stopJq } from '../src/functions';
import { call, fails } from './functions-util';

describe('jq (jq-web in a worker thread)', () => {
  after(() => stopJq());

  it('runs a program on JSON text or a value and returns every output', () => {
    assert.deepEqual(call('jq', '.', call('json_decode', '{"b": 2}')), [{ b: 2 }]);
    assert.deepEqual(call('jq', '.+1', call('json_decode', '5')), [6]);
    assert.deepEqual(call('jq', '.', '{"b": 2}'), [{ b: 2 }]);
    assert.deepEqual(call('jq', '.', '{"b": 2}', 10000), [{ b: 2 }]);
    assert.deepEqual(call('jq', '.[] | select(. > 1)', [1, 2, 3]), [2, 3]);
    assert.deepEqual(call('jq', 'empty', '{}'), []);
    assert.deepEqual(call('jq', '{temp: .t, unit: "C"}', { t: 21.5 }), [{ temp: 21.5, unit: 'C' }]);
  });

  it('reports jq errors as jq_exception', () => {
    fails(() => call('jq', '.a', '1'), 'jq_exception');
    fails(() => call('jq', '.[', '{}'), 'jq_exception');
    fails(() => call('jq', '.', '{not json'), 'jq_exception');
  });

  it('stops a program at its timeout, and the next call still works', () => {
    const forever = 'def while(cond; update): def _while: if cond then (update | _while) else . end; _while; while(. < 42; . * 2)';
    const started = Date.now();
    fails(() => call('jq', forever, '-2', 200), 'jq_exception');
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(call('jq', '. * 2', '21'), [42]);
  });
});
