import { strict as assert } from 'node:assert';
import { createHash, pbkdf2Sync } from 'node:crypto';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { ConfigProblem } from '@tributary/common';
import { constantTimeEqual, hashPassword, newSalt, parseHashAlgorithm, PasswordHashAlgorithm, verifyPassword } from '../src';

function alg(raw: unknown): PasswordHashAlgorithm {
  const a = parseHashAlgorithm(raw);
  if (a instanceof ConfigProblem) throw new Error(a.message);
  return a;
}

const DIGESTS = { md5: 'md5', sha: 'sha1', sha256: 'sha256', sha512: 'sha512' } as const;

describe('password hashes', () => {
  it('plain digests are lowercase hex of hash(salt + password) or hash(password + salt)', async () => {
    for (const [name, node] of Object.entries(DIGESTS)) {
      const hex = (s: string): string => createHash(node).update(s).digest('hex');
      assert.equal(await hashPassword(alg({ name, salt_position: 'prefix' }), 'pw', 'salt'), hex('saltpw'), name);
      assert.equal(await hashPassword(alg({ name, salt_position: 'suffix' }), 'pw', 'salt'), hex('pwsalt'), name);
      assert.equal(await hashPassword(alg({ name, salt_position: 'disable' }), 'pw', 'salt'), hex('pw'), name);
    }
    assert.equal(await hashPassword(alg({ name: 'plain', salt_position: 'suffix' }), 'pw', 's'), 'pws');
    // The field's default is prefix (EMQX's).
    assert.equal(await hashPassword(alg({ name: 'sha256' }), 'pw', 'salt'), createHash('sha256').update('saltpw').digest('hex'));
  });

  it('pbkdf2 is hex of PBKDF2-HMAC with the digest length unless dk_length says otherwise', async () => {
    const a = alg({ name: 'pbkdf2', mac_fun: 'sha256', iterations: 1000 });
    assert.equal(await hashPassword(a, 'pw', 'salt'), pbkdf2Sync('pw', 'salt', 1000, 32, 'sha256').toString('hex'));
    const b = alg({ name: 'pbkdf2', mac_fun: 'sha', iterations: 7, dk_length: 10 });
    assert.equal(await hashPassword(b, 'pw', 'salt'), pbkdf2Sync('pw', 'salt', 7, 10, 'sha1').toString('hex'));
    assert.equal(await verifyPassword(b, 'pw', pbkdf2Sync('pw', 'salt', 7, 10, 'sha1').toString('hex').toUpperCase(), 'salt'), true);
  });

  it('bcrypt verifies a known $2a$ hash and its $2b$ form, and hashes new passwords with the configured rounds', async () => {
    const bc = alg({ name: 'bcrypt' });
    // A published bcrypt test vector (OpenBSD / John the Ripper): "U*U" with cost 5.
    const known = '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';
    assert.equal(await verifyPassword(bc, 'U*U', known, ''), true);
    assert.equal(await verifyPassword(bc, 'U*U', known.replace('$2a$', '$2b$'), ''), true);
    assert.equal(await verifyPassword(bc, 'U*V', known, ''), false);
    assert.equal(await verifyPassword(bc, 'U*U', 'not a bcrypt hash', ''), false);
    const five = alg({ name: 'bcrypt', salt_rounds: 5 });
    const salt = newSalt(five);
    assert.match(salt, /^\$2[ab]\$05\$/);
    const stored = await hashPassword(five, 'secret', salt);
    assert.equal(await verifyPassword(five, 'secret', stored, salt), true);
    assert.equal(await verifyPassword(five, 'Secret', stored, salt), false);
    // A non-ASCII password is hashed as its UTF-8 bytes, as other bcrypt implementations do.
    assert.equal(await hashPassword(five, Buffer.from('pässwörd'), salt), bcrypt.hashSync('pässwörd', salt));
  });

  it('verification is exact: another salt, a longer password or a case change fails', async () => {
    const a = alg({ name: 'sha256', salt_position: 'suffix' });
    const stored = await hashPassword(a, 'pw', 'salt');
    assert.equal(await verifyPassword(a, Buffer.from('pw'), stored, 'salt'), true);
    assert.equal(await verifyPassword(a, 'pw', stored, 'salu'), false);
    assert.equal(await verifyPassword(a, 'pw ', stored, 'salt'), false);
    assert.equal(await verifyPassword(a, 'PW', stored, 'salt'), false);
    assert.equal(await verifyPassword(a, 'pw', stored.slice(1), 'salt'), false);
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
  });

  it('new salts are 32 hex digits, or empty when salting is disabled', () => {
    assert.match(newSalt(alg({ name: 'sha256', salt_position: 'suffix' })), /^[0-9a-f]{32}$/);
    assert.equal(newSalt(alg({ name: 'md5', salt_position: 'disable' })), '');
    assert.notEqual(newSalt(alg({ name: 'sha512' })), newSalt(alg({ name: 'sha512' })));
  });

  it('a bad algorithm object is a problem naming the field', () => {
    const problem = (raw: unknown): string => {
      const p = parseHashAlgorithm(raw);
      assert.ok(p instanceof ConfigProblem, JSON.stringify(raw));
      return p.message;
    };
    assert.match(problem('sha256'), /"password_hash_algorithm" must be an object/);
    assert.match(problem({ name: 'sha1' }), /"password_hash_algorithm\.name" must be one of/);
    assert.match(problem({ name: 'sha256', salt_position: 'middle' }), /"password_hash_algorithm\.salt_position"/);
    assert.match(problem({ name: 'bcrypt', salt_rounds: 4 }), /"password_hash_algorithm\.salt_rounds" must be a whole number from 5 to 10/);
    assert.match(problem({ name: 'bcrypt', salt_rounds: 11 }), /salt_rounds/);
    assert.match(problem({ name: 'pbkdf2', iterations: 10 }), /"password_hash_algorithm\.mac_fun" is required/);
    assert.match(problem({ name: 'pbkdf2', mac_fun: 'sha256' }), /"password_hash_algorithm\.iterations" is required/);
    assert.match(problem({ name: 'pbkdf2', mac_fun: 'sha256', iterations: 1, dk_length: 0 }), /dk_length/);
    assert.match(problem({ name: 'sha256', salt_rounds: 5 }), /"password_hash_algorithm\.salt_rounds" is not a field of the sha256 algorithm/);
  });
});
