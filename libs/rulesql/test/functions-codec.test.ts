import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import { bytesOf, call, fails, hex } from './functions-util';

describe('base64', () => {
  it("encodes and decodes (EMQX's examples)", () => {
    assert.equal(call('base64_encode', 'hello'), 'aGVsbG8=');
    assert.equal(call('base64_encode', call('hexstr2bin', 'CB48CD')), 'y0jN');
    assert.equal(call('base64_decode', 'aGVsbG8='), 'hello');
    assert.equal(call('bin2hexstr', call('base64_decode', 'y0jN')), 'CB48CD');
    for (const b of [randomBytes(1), randomBytes(2), randomBytes(3), randomBytes(100)]) assert.deepEqual(bytesOf(call('base64_decode', call('base64_encode', b))), b);
  });

  it('takes no_padding and urlsafe options, in any order', () => {
    const b = hex('fbff');
    assert.equal(call('base64_encode', b), '+/8=');
    assert.equal(call('base64_encode', b, 'urlsafe'), '-_8=');
    assert.equal(call('base64_encode', b, 'no_padding'), '+/8');
    assert.equal(call('base64_encode', b, 'urlsafe', 'no_padding'), '-_8');
    assert.equal(call('base64_encode', b, 'no_padding', 'urlsafe'), '-_8');
    assert.equal(call('base64_decode', 'aGVsbG8', 'no_padding'), 'hello');
    assert.deepEqual(call('base64_decode', '-_8=', 'urlsafe'), b);
    assert.deepEqual(call('base64_decode', '-_8', 'urlsafe', 'no_padding'), b);
    assert.deepEqual(call('base64_decode', '-_8', 'no_padding', 'urlsafe'), b);
  });

  it('decoding is strict: padding required unless no_padding, only the alphabet chosen', () => {
    fails(() => call('base64_decode', 'aGVsbG8'));
    fails(() => call('base64_decode', 'a$b='));
    fails(() => call('base64_decode', '-_8='));
    fails(() => call('base64_decode', '+/8=', 'urlsafe'));
    fails(() => call('base64_decode', 'a', 'no_padding'));
    assert.equal(call('base64_decode', 'aGVs\nbG8='), 'hello');
    fails(() => call('base64_encode', 1));
  });
});

describe('JSON', () => {
  it('json_encode and json_decode', () => {
    assert.equal(call('json_encode', [1, 2, 3]), '[1,2,3]');
    assert.equal(call('json_encode', { a: 'b', n: null }), '{"a":"b","n":null}');
    assert.equal(call('json_encode', 'abc'), '"abc"');
    assert.equal(call('map_get', 'a', call('json_decode', '{"a": 1}')), 1);
    assert.deepEqual(call('json_decode', '[1, {"x": null}]'), [1, { x: null }]);
    assert.equal(call('json_decode', '"s"'), 's');
    assert.deepEqual(call('json_decode', Buffer.from('{"k":true}')), { k: true });
    fails(() => call('json_decode', '{bad'), 'decode_json_failed');
    fails(() => call('json_decode', 1));
  });
});

describe("Erlang's external term format", () => {
  it('term_encode writes what term_to_binary writes for the value model', () => {
    assert.equal(call('bin2hexstr', call('term_encode', 'abc')), '836D00000003616263');
    assert.equal(call('bin2hexstr', call('term_encode', 1)), '836101');
    assert.equal(call('bin2hexstr', call('term_encode', 300)), '83620000012C');
    assert.equal(call('bin2hexstr', call('term_encode', -1)), '8362FFFFFFFF');
    assert.equal(call('bin2hexstr', call('term_encode', 2 ** 40)), '836E0600000000000001');
    assert.equal(call('bin2hexstr', call('term_encode', 1.5)), '83463FF8000000000000');
    assert.equal(call('bin2hexstr', call('term_encode', true)), '83770474727565');
    assert.equal(call('bin2hexstr', call('term_encode', undefined)), '837709756E646566696E6564');
    assert.equal(call('bin2hexstr', call('term_encode', [])), '836A');
    assert.equal(call('bin2hexstr', call('term_encode', [1, 2])), '836C00000002610161026A');
    assert.equal(call('bin2hexstr', call('term_encode', { a: 1 })), '8374000000016D00000001616101');
  });

  it('term_decode reads it back, and terms Erlang wrote with atoms, tuples and strings', () => {
    for (const v of ['abc', { a: 1 }, { '3': [1, 2, 4] }, [1.5, -7, 2 ** 40, -(2 ** 40), true, false, null, 'x'], [], {}]) {
      assert.deepEqual(call('term_decode', call('term_encode', v)), v);
    }
    assert.equal(call('term_decode', call('term_encode', undefined)), undefined);
    // term_to_binary({ok, "ab", hello}) with an old-style atom and STRING_EXT.
    assert.deepEqual(call('term_decode', hex('8368036400026f6b6b00026162640005' + Buffer.from('hello').toString('hex'))), ['ok', [97, 98], 'hello']);
    // term_to_binary(#{a => 1}) with an atom key, OTP 26 style (SMALL_ATOM_UTF8_EXT).
    assert.deepEqual(call('term_decode', hex('8374000000017701616101')), { a: 1 });
    // term_to_binary(<<"aaaa...">>, [compressed]).
    const big = 'a'.repeat(100);
    const compressed = Buffer.concat([hex('8350'), Buffer.from([0, 0, 0, 105]), deflateSync(Buffer.concat([hex('6d00000064'), Buffer.from(big)]))]);
    assert.equal(call('term_decode', compressed), big);
    fails(() => call('term_decode', 'not a term'));
    fails(() => call('term_decode', hex('8367')));
    fails(() => call('term_decode', hex('836d0000000a61')));
  });
});
