import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { bytesOf, call, fails, hex } from './functions-util';

describe('conversion functions', () => {
  it('str formats numbers as EMQX does (at most 10 decimals), maps and arrays as JSON', () => {
    assert.equal(call('str', 100), '100');
    assert.equal(call('str', 1234), '1234');
    assert.equal(call('str', 'abc'), 'abc');
    assert.equal(call('str', true), 'true');
    assert.equal(call('str', { a: 1 }), '{"a":1}');
    assert.equal(call('str', [{ a: 1 }, { b: 1 }]), '[{"a":1},{"b":1}]');
    assert.equal(call('str', call('nth', 1, call('json_decode', '[false]'))), 'false');
    assert.equal(call('str', 0.30000000004), '0.3');
    assert.equal(call('str', 0.3000000004), '0.3000000004');
    assert.equal(call('str', 3.14159265359), '3.1415926536');
    assert.equal(call('str', 0.000000314159265359), '0.0000003142');
    assert.equal(call('str', 0.1 + 0.2), '0.3');
    assert.equal(call('str', undefined), 'undefined');
    assert.equal(call('str', null), 'null');
    assert.equal(call('str', 1e21), '1000000000000000000000');
    // Bytes stay bytes.
    assert.deepEqual(call('str', hex('ff00')), hex('ff00'));
  });

  it('str_utf8 is str as valid UTF-8; str_utf16_le encodes UTF-16 little-endian', () => {
    assert.equal(call('str_utf8', 1234), '1234');
    assert.equal(call('str_utf8', 'abc 你好'), 'abc 你好');
    assert.equal(call('str_utf8', Buffer.from('你好🐸')), '你好🐸');
    assert.equal(call('str_utf8', { a: 'abc 你好' }), '{"a":"abc 你好"}');
    assert.equal(call('str_utf8', 3.14159265359), '3.1415926536');
    fails(() => call('str_utf8', hex('ff')));
    assert.equal(call('str_utf16_le', 'h'), 'h\u0000');
    assert.equal(call('bin2hexstr', call('str_utf16_le', 'hello')), '680065006C006C006F00');
    assert.equal(call('bin2hexstr', call('str_utf16_le', 1)), '3100');
    assert.deepEqual(call('str_utf16_le', '你好🐸'), Buffer.from('你好🐸', 'utf16le'));
  });

  it('bool takes true/false, 1/0 and their text only', () => {
    assert.equal(call('bool', true), true);
    assert.equal(call('bool', 1), true);
    assert.equal(call('bool', 'true'), true);
    assert.equal(call('bool', 0), false);
    assert.equal(call('bool', 'false'), false);
    assert.equal(call('bool', false), false);
    fails(() => call('bool', 20));
    fails(() => call('bool', 3));
    fails(() => call('bool', 'True'));
  });

  it('int rounds floats down and parses integer or float text', () => {
    assert.equal(call('int', true), 1);
    assert.equal(call('int', false), 0);
    assert.equal(call('int', 3.14), 3);
    assert.equal(call('int', 1.9), 1);
    assert.equal(call('int', -3.14), -4);
    assert.equal(call('int', '-100'), -100);
    assert.equal(call('int', '+200'), 200);
    assert.equal(call('int', '0010'), 10);
    assert.equal(call('int', '3.1415e2'), 314);
    assert.equal(call('int', '1.0'), 1);
    assert.equal(call('int', call('substr', 'Number 100', 7)), 100);
    fails(() => call('int', '-100+200'));
    fails(() => call('int', 'Number 100'));
    fails(() => call('int', 'a'));
    fails(() => call('int', [1]));
  });

  it('float parses float and integer text (Erlang syntax); float/2 keeps at most N decimals', () => {
    assert.equal(call('float', 20), 20);
    assert.equal(call('float', '3.14'), 3.14);
    assert.equal(call('float', '3.14e4'), 31400);
    assert.equal(call('float', '3.14e+4'), 31400);
    assert.equal(call('float', '3.14e-4'), 0.000314);
    assert.equal(call('float', '3.14E-4'), 0.000314);
    assert.equal(call('float', '1'), 1);
    assert.equal(call('float', '0.12345678901234567'), 0.12345678901234566);
    fails(() => call('float', 'a'));
    fails(() => call('float', true));
    assert.equal(call('float', '3.1415926', 3), 3.142);
    assert.equal(call('float', '0.000012345', 5), 0.00001);
    fails(() => call('float', 1.5, 0));
  });

  it("float2str gives EMQX's digits: the binary value to N places, trailing zeros dropped", () => {
    assert.equal(call('float2str', 20.2, 1), '20.2');
    assert.equal(call('float2str', 20.2, 10), '20.2');
    assert.equal(call('float2str', 20.2, 15), '20.199999999999999');
    assert.equal(call('float2str', 20.2, 16), '20.1999999999999993');
    assert.equal(call('float2str', 20.2, 17), '20.19999999999999929');
    assert.equal(call('float2str', 0.1, 5), '0.1');
    assert.equal(call('float2str', 0.1, 20), '0.10000000000000000555');
    assert.equal(call('float2str', 0.1, 25), '0.1000000000000000055511151');
    assert.equal(call('float2str', 0.00000000001, 20), '0.00000000001');
    assert.equal(call('float2str', 0.100001, 5), '0.1');
    assert.equal(call('float2str', 123456789.01234565, 8), '123456789.01234566');
    assert.equal(call('float2str', 20.2, 0), '20');
    assert.equal(call('float2str', 0.1, 120), '0.1000000000000000055511151231257827021181583404541015625');
    fails(() => call('float2str', 1.5, 254));
    fails(() => call('float2str', '1.5', 2));
  });

  it('map decodes JSON objects and turns [key, value] pairs into a map', () => {
    assert.deepEqual(call('map', '{"a":1}'), { a: 1 });
    assert.deepEqual(
      call('map', [
        ['ver', '1.0'],
        ['name', 'emqx'],
      ]),
      { ver: '1.0', name: 'emqx' },
    );
    assert.deepEqual(call('map', { b: 2 }), { b: 2 });
    fails(() => call('map', 'a'));
    fails(() => call('map', '[1]'));
    fails(() => call('map', 1.0));
  });

  it('bin2hexstr is upper-case hex (with a prefix for /2); hexstr2bin reads it back', () => {
    assert.equal(call('bin2hexstr', hex('0102')), '0102');
    assert.equal(call('bin2hexstr', Buffer.from([17, 33])), '1121');
    assert.equal(call('bin2hexstr', call('zip', 'hello')), 'CB48CDC9C90700');
    assert.equal(call('bin2hexstr', hex('0102'), '0x'), '0x0102');
    assert.equal(call('bin2hexstr', Buffer.from([17, 33]), '0B'), '0B1121');
    assert.equal(call('bin2hexstr', hex('0102'), '🧠'), '🧠0102');
    assert.deepEqual(bytesOf(call('hexstr2bin', '6364f')), Buffer.from([6, 54, 79]));
    assert.equal(call('hexstr2bin', 'a'), '\n');
    assert.deepEqual(bytesOf(call('hexstr2bin', 'f')), Buffer.from([15]));
    assert.deepEqual(bytesOf(call('hexstr2bin', '0102')), Buffer.from([1, 2]));
    assert.deepEqual(call('hexstr2bin', 'ff00'), hex('ff00'));
    assert.equal(call('hexstr2bin', '68656c6c6f'), 'hello');
    assert.deepEqual(bytesOf(call('hexstr2bin', '0x6364f', '0x')), Buffer.from([6, 54, 79]));
    assert.equal(call('hexstr2bin', '0X1121', '0X'), '\x11!');
    fails(() => call('hexstr2bin', '0x6364f', 'ab'));
    fails(() => call('hexstr2bin', 'zz'));
    for (const b of [hex(''), hex('00ff10'), Buffer.from('any bytes')]) assert.deepEqual(bytesOf(call('hexstr2bin', call('bin2hexstr', b))), b);
  });

  it('sqlserver_bin2hexstr is 0x and upper-case hex', () => {
    assert.equal(call('sqlserver_bin2hexstr', Buffer.from([1, 2])), '0x0102');
    assert.equal(call('sqlserver_bin2hexstr', Buffer.from([17, 33])), '0x1121');
    assert.equal(call('sqlserver_bin2hexstr', call('str_utf16_le', 'hello')), '0x680065006C006C006F00');
  });
});

describe('type checks', () => {
  it('is_null is undefined only; is_null_var also JSON null', () => {
    assert.equal(call('is_null', undefined), true);
    assert.equal(call('is_null', null), false);
    assert.equal(call('is_null', 'undefined'), false);
    assert.equal(call('is_null', ''), false);
    assert.equal(call('is_null', call('map_get', 'b', call('json_decode', '{"a": 1}'))), true);
    assert.equal(call('is_null', call('map_get', 'b', call('json_decode', '{"b": null}'))), false);
    assert.equal(call('is_null_var', null), true);
    assert.equal(call('is_null_var', undefined), true);
    assert.equal(call('is_null_var', 'null'), false);
    assert.equal(call('is_null_var', call('map_get', 'b', call('json_decode', '{"b": null}'))), true);
    for (const v of [undefined, 'undefined', null, 'null', 'a', '']) {
      assert.equal(call('is_not_null', v), !call('is_null', v));
      assert.equal(call('is_not_null_var', v), !call('is_null_var', v));
    }
  });

  it('is_str, is_bool, is_int, is_float, is_num, is_map, is_array', () => {
    assert.equal(call('is_str', '123'), true);
    assert.equal(call('is_str', ''), true);
    assert.equal(call('is_str', hex('ff')), true);
    assert.equal(call('is_str', 123), false);
    assert.equal(call('is_bool', true), true);
    assert.equal(call('is_bool', false), true);
    assert.equal(call('is_bool', 'true'), false);
    assert.equal(call('is_int', 123), true);
    assert.equal(call('is_int', 123.4), false);
    assert.equal(call('is_float', 123.4), true);
    assert.equal(call('is_float', 123), false);
    assert.equal(call('is_num', 123), true);
    assert.equal(call('is_num', 123.4), true);
    assert.equal(call('is_num', '123'), false);
    assert.equal(call('is_map', call('json_decode', '{"value": 1}')), true);
    assert.equal(call('is_map', call('json_decode', '[{"value": 1}]')), false);
    assert.equal(call('is_array', [1, 2]), true);
    assert.equal(call('is_array', call('json_decode', '[{"value": 1}]')), true);
    assert.equal(call('is_array', 0.5), false);
    assert.equal(call('is_array', '[1, 2]'), false);
  });

  it('is_empty: empty arrays and maps, JSON text included', () => {
    assert.equal(call('is_empty', call('json_decode', '{}')), true);
    assert.equal(call('is_empty', '{}'), true);
    assert.equal(call('is_empty', []), true);
    assert.equal(call('is_empty', '{"key" : 1}'), false);
    assert.equal(call('is_empty', call('map_get', 'key', '{"key" : []}')), true);
    assert.equal(call('is_empty', [1]), false);
    assert.equal(call('is_empty', { a: 'b' }), false);
    fails(() => call('is_empty', 1));
  });
});
