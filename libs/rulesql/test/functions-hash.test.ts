import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { call, fails, hex } from './functions-util';

describe('hash functions', () => {
  it("md5, sha and sha256 are lower-case hex (EMQX's examples)", () => {
    assert.equal(call('md5', 'hello'), '5d41402abc4b2a76b9719d911017c592');
    assert.equal(call('sha', 'hello'), 'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d');
    assert.equal(call('sha256', 'hello'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.equal(call('md5', 'some val'), '1b68352b3e9c2de52ffd322e30bffcc4');
    assert.equal(call('sha', 'some val'), 'f85ba28ff5ea84a0cbfa118319acb0c5e58ee2b9');
    assert.equal(call('sha256', 'some val'), '67f97635d8a0e064f60ba6e8846a0ac0be664f18f0c1dc6445cd3542d2b71993');
    assert.equal(call('md5', hex('00ff')), createHash('md5').update(hex('00ff')).digest('hex'));
    fails(() => call('md5', 1));
    fails(() => call('sha256', undefined));
  });

  it('hash/2 takes Erlang crypto names', () => {
    const data = 'hello';
    const cases: [string, string][] = [
      ['md5', 'md5'],
      ['sha', 'sha1'],
      ['sha1', 'sha1'],
      ['sha224', 'sha224'],
      ['sha256', 'sha256'],
      ['sha384', 'sha384'],
      ['sha512', 'sha512'],
      ['sha3_224', 'sha3-224'],
      ['sha3_256', 'sha3-256'],
      ['sha3_384', 'sha3-384'],
      ['sha3_512', 'sha3-512'],
      ['shake128', 'shake128'],
      ['shake256', 'shake256'],
      ['blake2b', 'blake2b512'],
      ['blake2s', 'blake2s256'],
    ];
    for (const [erl, node] of cases) assert.equal(call('hash', erl, data), createHash(node).update(data).digest('hex'), erl);
    assert.equal((call('hash', 'shake128', data) as string).length, 32);
    assert.equal(call('hash', 'sha256', true), createHash('sha256').update('true').digest('hex'));
    fails(() => call('hash', 'nope', data));
    fails(() => call('hash', 'sha256', undefined));
  });
});
