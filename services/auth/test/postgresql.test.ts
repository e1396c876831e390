import { strict as assert } from 'node:assert';
import { createHash, pbkdf2Sync } from 'node:crypto';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { ConfigProblem } from '@tributary/common';
import { parseHashAlgorithm, verifyPassword } from '../src/hash';
import { postgresAuthenticatorSpec } from '../src/authn/postgresql';
import { rulesFromRows } from '../src/authz/postgresql';
import { compileQuery } from '../src/pg-client';
import { attrValues, checkPlaceholders, render } from '../src/template';
import { parseAuthenticator, parseSource } from '../src/config';

const hex = (alg: string, s: string): string => createHash(alg).update(s).digest('hex');
const pw = Buffer.from('s3cret');

describe('PostgreSQL queries', () => {
  it('turns each placeholder into a bind parameter, the same number when one repeats', () => {
    const q = compileQuery('SELECT 1 FROM t WHERE username = ${username} AND (clientid = ${clientid} OR alias = ${username})', ['username', 'clientid']);
    assert.deepEqual(q, { text: 'SELECT 1 FROM t WHERE username = $1 AND (clientid = $2 OR alias = $1)', params: ['username', 'clientid'] });
  });

  it('${client_attrs.NAME} is a bind parameter too where the list allows client_attrs.*, and unknown where it does not', () => {
    const q = compileQuery('SELECT 1 FROM t WHERE tenant = ${client_attrs.tenant} AND username = ${username}', ['username', 'client_attrs.*']);
    assert.deepEqual(q, { text: 'SELECT 1 FROM t WHERE tenant = $1 AND username = $2', params: ['client_attrs.tenant', 'username'] });
    const refused = compileQuery('SELECT 1 FROM t WHERE tenant = ${client_attrs.tenant}', ['username']);
    assert.ok(refused instanceof ConfigProblem && /unknown placeholder \$\{client_attrs\.tenant\}/.test(refused.message));
  });

  it('renders ${client_attrs.NAME} in HTTP templates from the attributes, empty when the client lacks one', () => {
    const values = { ...attrValues({ tenant: 't1' }), clientid: 'c' };
    assert.equal(render('/${client_attrs.tenant}/${client_attrs.none}/${clientid}', values), '/t1//c');
    assert.equal(checkPlaceholders('${client_attrs.tenant}', ['clientid', 'client_attrs.*'], 'url'), undefined);
    assert.ok(checkPlaceholders('${client_attrs.tenant}', ['clientid'], 'url') instanceof ConfigProblem);
  });

  it('refuses unknown placeholders, quoted placeholders and $1 of its own', () => {
    for (const [sql, want] of [
      ['SELECT 1 WHERE cn = ${cert_common_name}', /unknown placeholder \$\{cert_common_name\}/],
      ["SELECT 1 WHERE username = '${username}'", /without quotes/],
      ['SELECT 1 WHERE username = $1', /not \$1/],
    ] as const) {
      const q = compileQuery(sql, ['username']);
      assert.ok(q instanceof ConfigProblem && want.test(q.message), `${sql}: ${JSON.stringify(q)}`);
    }
  });

  it('validates an authenticator item, naming the field', () => {
    const base = { mechanism: 'password_based', backend: 'postgresql', server: '127.0.0.1', database: 'd', username: 'u', query: 'SELECT password_hash FROM t WHERE username = ${username}' };
    const ok = parseAuthenticator(base);
    assert.ok(!(ok instanceof ConfigProblem));
    const { mechanism: _m, backend: _b, ...fields } = base;
    const cfg = postgresAuthenticatorSpec.parse(fields);
    assert.ok(!(cfg instanceof ConfigProblem));
    assert.equal(cfg.conn.port, 5432);
    assert.equal(cfg.conn.poolSize, 8);
    assert.equal(cfg.conn.queryTimeout, 5000);
    assert.deepEqual(cfg.algorithm, { name: 'sha256', salt_position: 'prefix' });
    for (const [extra, want] of [
      [{ server: 'h:99999' }, /server/],
      [{ pool_size: 0 }, /pool_size/],
      [{ query_timeout: 'soon' }, /query_timeout/],
      [{ ssl: { enable: 'yes' } }, /ssl.enable/],
      [{ password_hash_algorithm: { name: 'rot13' } }, /password_hash_algorithm.name/],
      [{ password_hash_algorithm: { name: 'sha256', salt_position: 'middle' } }, /salt_position/],
      [{ password_hash_algorithm: { name: 'pbkdf2', mac_fun: 'sha256' } }, /iterations/],
      [{ colour: 'blue' }, /unknown field "colour"/],
      [{ query: 'SELECT 1 WHERE x = ${topic}' }, /unknown placeholder/],
    ] as const) {
      const p = parseAuthenticator({ ...base, ...extra });
      assert.ok(p instanceof ConfigProblem && want.test(p.message), `${JSON.stringify(extra)}: ${JSON.stringify(p)}`);
    }
    const src = parseSource({ type: 'postgresql', server: '[::1]:6543', database: 'd', username: 'u', query: 'SELECT permission, action, topic FROM acl WHERE username = ${username}' });
    assert.ok(!(src instanceof ConfigProblem));
    assert.ok(parseSource({ type: 'postgresql', server: 'h', database: 'd', username: 'u', query: 'x', password_hash_algorithm: {} }) instanceof ConfigProblem);
  });
});

describe('PostgreSQL password hashes', () => {
  it('simple hashes with the salt before, after or not at all', async () => {
    const cases = [
      [{ name: 'sha256', salt_position: 'prefix' }, hex('sha256', 'salt' + 's3cret')],
      [{ name: 'sha512', salt_position: 'suffix' }, hex('sha512', 's3cret' + 'salt')],
      [{ name: 'md5', salt_position: 'disable' }, hex('md5', 's3cret')],
      [{ name: 'sha', salt_position: 'prefix' }, hex('sha1', 'salts3cret').toUpperCase()],
      [{ name: 'plain', salt_position: 'suffix' }, 's3cretsalt'],
    ] as const;
    for (const [raw, hash] of cases) {
      const alg = parseHashAlgorithm(raw);
      assert.ok(!(alg instanceof ConfigProblem));
      assert.equal(await verifyPassword(alg, pw, hash, 'salt'), true, raw.name);
      assert.equal(await verifyPassword(alg, Buffer.from('s3cres'), hash, 'salt'), false, raw.name);
      assert.equal(await verifyPassword(alg, pw, hash, 'other'), raw.salt_position === 'disable', raw.name);
    }
  });

  it('bcrypt reads its salt from the hash; pbkdf2 derives with the configured MAC', async () => {
    const b = parseHashAlgorithm({ name: 'bcrypt' });
    assert.ok(!(b instanceof ConfigProblem));
    const stored = bcrypt.hashSync('s3cret', 5);
    assert.equal(await verifyPassword(b, pw, stored, ''), true);
    assert.equal(await verifyPassword(b, Buffer.from('nope'), stored, ''), false);
    assert.equal(await verifyPassword(b, pw, 'not-a-bcrypt-hash', ''), false);
    const p = parseHashAlgorithm({ name: 'pbkdf2', mac_fun: 'sha256', iterations: 10, dk_length: 20 });
    assert.ok(!(p instanceof ConfigProblem));
    const dk = pbkdf2Sync('s3cret', 'NaCl', 10, 20, 'sha256').toString('hex');
    assert.equal(await verifyPassword(p, pw, dk, 'NaCl'), true);
    assert.equal(await verifyPassword(p, pw, dk, 'NaCI'), false);
  });
});

describe('PostgreSQL ACL rows', () => {
  it('become rules: lower-case words, qos lists, retain forms, topic or topics', () => {
    const rules = rulesFromRows([
      { permission: 'DENY', action: 'publish', topic: 'a/#', qos: '1,2', retain: 1 },
      { permission: 'allow', action: 'subscribe', topic: 'b/${clientid}', qos: null, retain: null },
      { permission: 'allow', action: 'all', topics: ['c', 'eq d/#'], qos: 0, retain: 'all' },
    ]);
    assert.deepEqual(rules, [
      { permission: 'deny', who: 'all', action: 'publish', topics: [{ filter: 'a/#' }], qos: [1, 2], retain: true },
      { permission: 'allow', who: 'all', action: 'subscribe', topics: [{ filter: 'b/${clientid}' }] },
      { permission: 'allow', who: 'all', action: 'all', topics: [{ filter: 'c' }, { eq: 'd/#' }], qos: [0] },
    ]);
    assert.throws(() => rulesFromRows([{ permission: 'maybe', action: 'all', topic: 'x' }]), /permission/);
    assert.throws(() => rulesFromRows([{ permission: 'allow', action: 'all', topic: null }]), /topic/);
  });
});
