import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { call, fails, hex } from './functions-util';

describe('bitwise functions', () => {
  it("give EMQX's documented results on signed integers", () => {
    assert.equal(call('bitand', 10, 8), 8);
    assert.equal(call('bitand', -10, -8), -16);
    assert.equal(call('bitnot', 10), -11);
    assert.equal(call('bitnot', -12), 11);
    assert.equal(call('bitsl', 8, 2), 32);
    assert.equal(call('bitsl', -8, 2), -32);
    assert.equal(call('bitsr', 8, 2), 2);
    assert.equal(call('bitsr', 8, 4), 0);
    assert.equal(call('bitsr', -8, 2), -2);
    assert.equal(call('bitsr', -8, 6), -1);
    assert.equal(call('bitor', 10, 8), 10);
    assert.equal(call('bitor', -10, -8), -2);
    assert.equal(call('bitxor', 10, 8), 2);
    assert.equal(call('bitxor', -10, -8), 14);
  });

  it('work past 32 bits (Erlang integers are unbounded)', () => {
    assert.equal(call('bitsl', 1, 40), 2 ** 40);
    assert.equal(call('bitsr', 2 ** 40, 38), 4);
    assert.equal(call('bitand', 2 ** 40 + 5, 2 ** 40 + 3), 2 ** 40 + 1);
    assert.equal(call('bitor', 2 ** 33, 1), 2 ** 33 + 1);
    assert.equal(call('bitxor', 2 ** 33 + 1, 1), 2 ** 33);
    assert.equal(call('bitnot', 2 ** 40), -(2 ** 40) - 1);
    fails(() => call('bitand', 1.5, 1));
    fails(() => call('bitsl', '1', 1));
  });
});

describe('bit-sequence functions', () => {
  it('bitsize and bytesize count the bits and bytes of text (UTF-8) and binaries', () => {
    assert.equal(call('bitsize', 'abc'), 24);
    assert.equal(call('bitsize', '你好'), 48);
    assert.equal(call('bitsize', 'a'), 8);
    assert.equal(call('bytesize', 'abc'), 3);
    assert.equal(call('bytesize', '你好'), 6);
    assert.equal(call('bytesize', ''), 0);
    assert.equal(call('bytesize', hex('0102')), 2);
    fails(() => call('bitsize', 1));
  });

  it("subbits/2,3 read unsigned big-endian integers (EMQX's examples)", () => {
    const bin = call('hexstr2bin', '9F4E58');
    assert.equal(call('subbits', bin, 8), 159);
    assert.equal(call('subbits', bin, 16), 40782);
    assert.equal(call('subbits', call('base64_decode', 'n05Y'), 8), 159);
    assert.equal(call('subbits', bin, 1, 8), 159);
    assert.equal(call('subbits', bin, 9, 8), 78);
    assert.equal(call('subbits', call('base64_decode', 'n05Y'), 9, 4), 4);
    const ff = Buffer.from([255]);
    for (let n = 1; n <= 8; n++) assert.equal(call('subbits', ff, n), 2 ** n - 1);
    for (let n = 1; n <= 8; n++) assert.equal(call('subbits', ff, 1, n), 2 ** n - 1);
    // Fewer bits left than asked for: the rest is taken.
    assert.equal(call('subbits', ff, 2, 8), 127);
    // A start past the end gives undefined.
    assert.equal(call('subbits', ff, 9, 1), undefined);
  });

  it('subbits/4..6 read signed, little-endian integers and floats', () => {
    const bin = hex('9F4E58');
    assert.equal(call('subbits', bin, 1, 16, 'integer', 'unsigned', 'big'), 40782);
    assert.equal(call('subbits', bin, 1, 16, 'integer', 'signed', 'big'), -24754);
    assert.equal(call('subbits', bin, 1, 16, 'integer', 'unsigned', 'little'), 20127);
    assert.equal(call('subbits', bin, 1, 16, 'float', 'unsigned', 'big'), -0.00713348388671875);
    assert.equal(call('subbits', bin, 1, 16, 'float', 'signed', 'big'), -0.00713348388671875);
    const i32 = Buffer.alloc(4);
    i32.writeInt32BE(-456);
    assert.equal(call('subbits', i32, 1, 32, 'integer', 'signed', 'big'), -456);
    i32.writeInt32BE(456);
    assert.equal(call('subbits', i32, 1, 32, 'integer', 'unsigned'), 456);
    const f64 = Buffer.alloc(8);
    f64.writeDoubleBE(5.3);
    assert.equal(call('subbits', f64, 1, 64, 'float'), 5.3);
    f64.writeDoubleLE(-5.3);
    assert.equal(call('subbits', f64, 1, 64, 'float', 'signed', 'little'), -5.3);
    const f32 = Buffer.alloc(4);
    f32.writeFloatLE(1.5);
    assert.equal(call('subbits', f32, 1, 32, 'float', 'unsigned', 'little'), 1.5);
    // 12 bits little-endian: the first byte is the low one, the last 4 bits the high ones.
    assert.equal(call('subbits', hex('23 10'.replace(' ', '')), 1, 12, 'integer', 'unsigned', 'little'), 0x123);
    fails(() => call('subbits', bin, 1, 8, 'float'));
    fails(() => call('subbits', bin, 1, 8, 'string'));
    fails(() => call('subbits', bin, 1, 8, 'integer', 'sign'));
  });

  it("subbits 'bits' gives the bits as bytes (6 bits of 9F4E58 print as 27)", () => {
    const bits = call('subbits', call('hexstr2bin', '9F4E58'), 1, 6, 'bits', 'unsigned', 'big');
    assert.equal(call('bin2hexstr', bits), '27');
    assert.deepEqual(call('subbits', hex('9F4E58'), 9, 16, 'bits'), hex('4E58'));
    assert.deepEqual(call('subbits', hex('9F4E58'), 5, 8, 'bits'), hex('F4'));
  });
});
