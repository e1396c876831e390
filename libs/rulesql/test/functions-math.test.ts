import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { call, fails, near } from './functions-util';

describe('operators as functions', () => {
  it("'+' adds numbers and concatenates when either side is text", () => {
    assert.equal(call('+', 1, 2), 3);
    assert.equal(call('+', 1.5, 2), 3.5);
    assert.equal(call('+', 'a', 'b'), 'ab');
    assert.equal(call('+', 'n=', 1), 'n=1');
    assert.equal(call('+', 2.5, 'x'), '2.5x');
    assert.equal(call('+', 'v:', true), 'v:true');
    assert.deepEqual(call('+', Buffer.from([0xff]), 'a'), Buffer.from([0xff, 0x61]));
    fails(() => call('+', 1, true));
    fails(() => call('+', [1], 2));
  });

  it("'-', '*' and '/' need numbers; '/' always divides as floats, by zero is badarith", () => {
    assert.equal(call('-', 5, 7), -2);
    assert.equal(call('*', 3, 1.5), 4.5);
    assert.equal(call('/', 7, 2), 3.5);
    assert.equal(call('/', 6, 3), 2);
    fails(() => call('/', 1, 0), 'badarith');
    fails(() => call('-', '5', 1));
    fails(() => call('*', undefined, 1));
  });

  it('div and mod are integer-only; div truncates, mod takes the dividend sign', () => {
    assert.equal(call('div', 7, 2), 3);
    assert.equal(call('div', -7, 2), -3);
    assert.equal(call('mod', 7, 3), 1);
    assert.equal(call('mod', -7, 3), -1);
    assert.equal(call('mod', 7, -3), 1);
    fails(() => call('div', 7.5, 2));
    fails(() => call('mod', 7, 1.5));
    fails(() => call('div', 1, 0), 'badarith');
  });

  it('eq compares loosely and deeply', () => {
    assert.equal(call('eq', 1, 1), true);
    assert.equal(call('eq', 'a', Buffer.from('a')), true);
    assert.equal(call('eq', { a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), true);
    assert.equal(call('eq', { a: 1 }, { a: 1, b: 2 }), false);
    assert.equal(call('eq', 1, '1'), false);
  });
});

describe('math functions', () => {
  it("give EMQX's documented results (transcendental ones to the last bits: libm and V8 may differ there)", () => {
    assert.equal(call('abs', -12), 12);
    assert.equal(call('abs', -1.2), 1.2);
    near(call('acos', 0.5), 1.0471975511965976);
    near(call('acosh', 1.5), 0.9624236501192069);
    near(call('asin', 0.5), 0.5235987755982988);
    near(call('asinh', 0.5), 0.48121182505960347);
    near(call('atan', 0.5), 0.46364760900080615);
    near(call('atanh', 0.5), 0.5493061443340549);
    assert.equal(call('ceil', 0.8), 1);
    near(call('cos', 0.5), 0.8775825618903728);
    near(call('cosh', 0.5), 1.1276259652063807);
    near(call('exp', 1), 2.718281828459045);
    assert.equal(call('floor', 3.6), 3);
    assert.equal(call('fmod', 6.5, 2.5), 1.5);
    assert.equal(call('fmod', -32, 5), -2);
    near(call('log', 7.38905609893065), 2);
    assert.equal(call('log10', 100), 2);
    near(call('log2', 8), 3);
    near(call('log2', 8.5), 3.0874628412503395);
    assert.equal(call('round', 4.5), 5);
    assert.equal(call('round', 1.34), 1);
    assert.equal(call('power', 2, 3), 8);
    assert.equal(call('power', 2, 10), 1024);
    near(call('sin', 0.5), 0.479425538604203);
    near(call('sinh', 0.5), 0.5210953054937474);
    assert.equal(call('sqrt', 9), 3);
    assert.equal(call('sqrt', 2), 1.4142135623730951);
    near(call('tan', 0.5), 0.5463024898437905);
    near(call('tanh', 0.5), 0.46211715726000974);
  });

  it('round halves away from zero, as Erlang does', () => {
    assert.equal(call('round', -2.5), -3);
    assert.equal(call('round', 2.5), 3);
    assert.equal(call('round', -2.4), -2);
  });

  it('domain errors and overflows are badarith; non-numbers are bad arguments', () => {
    fails(() => call('sqrt', -1), 'badarith');
    fails(() => call('log', 0), 'badarith');
    fails(() => call('acos', 2), 'badarith');
    fails(() => call('exp', 1000), 'badarith');
    fails(() => call('fmod', 1, 0), 'badarith');
    fails(() => call('sin', '0.5'));
    fails(() => call('ceil', undefined));
  });

  it('random() is a float in [0, 1)', () => {
    for (let i = 0; i < 20; i++) {
      const r = call('random') as number;
      assert.ok(r >= 0 && r < 1);
    }
  });
});
