import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MemoryBackbone, MemoryBackboneStorage } from '@tributary/backbone';
import { ConfigError, ConfigProblem, ConflictError, NotFoundError, silentLogger, ValidationError } from '@tributary/common';
import type { AuthorizeRequest, ClientInfo, Credentials } from '@tributary/hooks';
import { AUTHENTICATORS, AUTHZ_SOURCES, BuiltinAuthenticator, BuiltinAuthzSource, BuiltinConfig, ProviderContext, RuleStore } from '../src';

const cred = (username: string | undefined, password: string | undefined, clientId = 'c1'): Credentials => ({
  clientId,
  username,
  password: password === undefined ? undefined : Buffer.from(password),
  peerhost: '127.0.0.1',
  protocolVersion: 5,
});

function config(raw: Record<string, unknown> = {}): BuiltinConfig {
  const c = AUTHENTICATORS['password_based:built_in_database']!.parse(raw);
  if (c instanceof ConfigProblem) throw new Error(c.message);
  return c as BuiltinConfig;
}

describe('built-in database authenticator', () => {
  let storage: MemoryBackboneStorage;
  let backbones: MemoryBackbone[];
  let dir: string;
  let changes: number;

  async function context(): Promise<ProviderContext> {
    const backbone = new MemoryBackbone({ storage });
    await backbone.start();
    backbones.push(backbone);
    return { backbone, logger: silentLogger, nodeName: 'n1', dataDir: dir, rulesChanged: () => changes++ };
  }

  async function started(raw: Record<string, unknown> = {}): Promise<BuiltinAuthenticator> {
    const a = new BuiltinAuthenticator(config(raw), await context());
    await a.start();
    return a;
  }

  beforeEach(() => {
    storage = new MemoryBackboneStorage();
    backbones = [];
    dir = mkdtempSync(join(tmpdir(), 'tributary-auth-'));
    changes = 0;
  });
  afterEach(async () => {
    for (const b of backbones) await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('defaults to username and sha256 with the salt as suffix', async () => {
    const a = await started();
    assert.equal(a.config.user_id_type, 'username');
    assert.deepEqual(a.config.password_hash_algorithm, { name: 'sha256', salt_position: 'suffix' });
    await a.users.add('alice', 'secret');
    const r = a.users.record('alice');
    assert.ok(r && r.kind === 'password');
    assert.equal(r.password_hash, createHash('sha256').update(`secret${r.salt}`).digest('hex'));
  });

  it('unknown user: ignore; wrong password: deny; right password: allow with the superuser flag', async () => {
    const a = await started();
    await a.users.add('alice', 'secret');
    await a.users.add('root', 'toor', true);
    assert.deepEqual(await a.authenticate(cred('bob', 'secret')), { result: 'ignore' });
    assert.deepEqual(await a.authenticate(cred(undefined, 'secret')), { result: 'ignore' });
    assert.deepEqual(await a.authenticate(cred('alice', 'wrong')), { result: 'deny' });
    assert.deepEqual(await a.authenticate(cred('alice', undefined)), { result: 'deny' });
    assert.deepEqual(await a.authenticate(cred('alice', 'secret')), { result: 'allow', isSuperuser: false });
    assert.deepEqual(await a.authenticate(cred('root', 'toor')), { result: 'allow', isSuperuser: true });
  });

  it('user_id_type clientid reads the client id', async () => {
    const a = await started({ user_id_type: 'clientid' });
    await a.users.add('dev-1', 'pw');
    assert.deepEqual(await a.authenticate(cred('whoever', 'pw', 'dev-1')), { result: 'allow', isSuperuser: false });
    assert.deepEqual(await a.authenticate(cred('dev-1', 'pw', 'other')), { result: 'ignore' });
  });

  it('users keep the algorithm they were made with when the configuration changes', async () => {
    const old = await started({ password_hash_algorithm: { name: 'md5', salt_position: 'prefix' } });
    await old.users.add('alice', 'secret');
    const now = await started({ password_hash_algorithm: { name: 'bcrypt', salt_rounds: 5 } });
    await now.users.add('bob', 'hunter2');
    assert.deepEqual(await now.authenticate(cred('alice', 'secret')), { result: 'allow', isSuperuser: false });
    assert.deepEqual(await now.authenticate(cred('bob', 'hunter2')), { result: 'allow', isSuperuser: false });
    const bob = now.users.record('bob');
    assert.deepEqual(bob?.kind === 'password' && bob.algorithm, { name: 'bcrypt', salt_rounds: 5 });
    const alice = now.users.record('alice');
    assert.deepEqual(alice?.kind === 'password' && alice.algorithm, { name: 'md5', salt_position: 'prefix' });
  });

  it('the store adds, updates, deletes and lists users in user_id order; errors carry codes', async () => {
    const a = await started();
    for (const u of ['carol', 'alice', 'bob', 'dave', 'erin']) await a.users.add(u, `${u}-pw`);
    await assert.rejects(a.users.add('alice', 'x'), (e: unknown) => e instanceof ConflictError && e.code === 'USER_EXISTS' && e.status === 409);
    assert.deepEqual(a.users.list().map((u) => u.user_id), ['alice', 'bob', 'carol', 'dave', 'erin']);
    assert.deepEqual(a.users.list()[0], { user_id: 'alice', is_superuser: false });
    assert.deepEqual(await a.users.update('bob', { is_superuser: true }), { user_id: 'bob', is_superuser: true });
    assert.deepEqual(await a.authenticate(cred('bob', 'bob-pw')), { result: 'allow', isSuperuser: true });
    await a.users.update('bob', { password: 'new' });
    assert.deepEqual(await a.authenticate(cred('bob', 'bob-pw')), { result: 'deny' });
    assert.deepEqual(await a.authenticate(cred('bob', 'new')), { result: 'allow', isSuperuser: true });
    await a.users.delete('bob');
    assert.deepEqual(await a.authenticate(cred('bob', 'new')), { result: 'ignore' });
    const notFound = (e: unknown): boolean => e instanceof NotFoundError && e.code === 'USER_NOT_FOUND' && e.status === 404;
    assert.throws(() => a.users.get('bob'), notFound);
    await assert.rejects(a.users.delete('bob'), notFound);
    await assert.rejects(a.users.update('bob', { password: 'x' }), notFound);
    assert.deepEqual(a.users.get('alice'), { user_id: 'alice', is_superuser: false });
  });

  it('a user added in one process is seen by another reading the same table', async () => {
    const one = await started();
    const two = await started();
    await one.users.add('alice', 'secret');
    await two.users.table.sync?.();
    assert.deepEqual(await two.authenticate(cred('alice', 'secret')), { result: 'allow', isSuperuser: false });
  });

  it('bootstraps plain and hashed users from CSV, leaving existing users alone', async () => {
    const first = await started();
    await first.users.add('alice', 'kept');
    const plain = join(dir, 'users.csv');
    writeFileSync(plain, 'user_id,password,is_superuser\nalice,overwritten,true\n"bob,the builder","p,w ""q""",false\n\nroot,toor,true\n');
    const a = await started({ bootstrap_file: plain });
    assert.deepEqual(await a.authenticate(cred('alice', 'kept')), { result: 'allow', isSuperuser: false });
    assert.deepEqual(await a.authenticate(cred('bob,the builder', 'p,w "q"')), { result: 'allow', isSuperuser: false });
    assert.deepEqual(await a.authenticate(cred('root', 'toor')), { result: 'allow', isSuperuser: true });

    const hashed = join(dir, 'hashed.csv');
    const hash = createHash('sha256').update('pwsalt1').digest('hex');
    writeFileSync(hashed, `user_id,password_hash,salt,is_superuser\ncarol,${hash},salt1,false\n`);
    const h = await started({ bootstrap_file: hashed, bootstrap_type: 'hash' });
    assert.deepEqual(await h.authenticate(cred('carol', 'pw')), { result: 'allow', isSuperuser: false });
  });

  it('a missing or bad bootstrap file is a ConfigError naming the key and the line', async () => {
    const fails = async (raw: Record<string, unknown>, re: RegExp): Promise<void> => {
      const a = new BuiltinAuthenticator(config(raw), await context());
      await assert.rejects(a.start(), (e: unknown) => e instanceof ConfigError && re.test(e.message));
    };
    await fails({ bootstrap_file: join(dir, 'nope.csv') }, /password_based:built_in_database: bootstrap_file .*nope\.csv cannot be read: ENOENT/);
    const f = join(dir, 'bad.csv');
    writeFileSync(f, 'user_id,password,is_superuser\nalice,pw,false\nbob,pw\n');
    await fails({ bootstrap_file: f }, /bad\.csv line 3: 2 fields, the header has 3/);
    writeFileSync(f, 'user_id,password,is_superuser\nalice,pw,maybe\n');
    await fails({ bootstrap_file: f }, /line 2: is_superuser must be true or false/);
    writeFileSync(f, 'user,password\n');
    await fails({ bootstrap_file: f }, /line 1: unknown column "user"/);
    writeFileSync(f, 'user_id,password\n"alice,pw\n');
    await fails({ bootstrap_file: f }, /line 2: unbalanced quotes/);
    writeFileSync(f, 'user_id,salt,is_superuser\n');
    await fails({ bootstrap_file: f, bootstrap_type: 'hash' }, /no column "password_hash"/);
  });

  it('configuration problems name the field', () => {
    const spec = AUTHENTICATORS['password_based:built_in_database']!;
    const problem = (raw: Record<string, unknown>): string => (spec.parse(raw) as ConfigProblem).message;
    assert.match(problem({ user_id_type: 'email' }), /"user_id_type" must be username or clientid/);
    assert.match(problem({ password_hash_algorithm: { name: 'rot13' } }), /password_hash_algorithm\.name/);
    assert.match(problem({ bootstrap_type: 'json' }), /"bootstrap_type" must be plain or hash/);
    assert.match(problem({ bootstrap_file: 3 }), /"bootstrap_file"/);
    assert.match(problem({ password_hash: {} }), /unknown field "password_hash"/);
  });
});

describe('built-in database authorization', () => {
  const client: ClientInfo = { clientId: 'dev-1', username: 'alice', peerhost: '10.0.0.1', protocolVersion: 5, isSuperuser: false };
  const pub = (topic: string, qos: 0 | 1 | 2 = 0): AuthorizeRequest => ({ action: 'publish', topic, qos, retain: false });
  const sub = (topic: string): AuthorizeRequest => ({ action: 'subscribe', topic, qos: 0, retain: false });
  let storage: MemoryBackboneStorage;
  let backbones: MemoryBackbone[];
  let changes: number;

  async function source(): Promise<BuiltinAuthzSource> {
    const backbone = new MemoryBackbone({ storage });
    await backbone.start();
    backbones.push(backbone);
    const config = AUTHZ_SOURCES.built_in_database!.parse({});
    const s = AUTHZ_SOURCES.built_in_database!.create(config, { backbone, logger: silentLogger, nodeName: 'n', dataDir: '.', rulesChanged: () => changes++ }) as BuiltinAuthzSource;
    await s.start!();
    return s;
  }

  beforeEach(() => {
    storage = new MemoryBackboneStorage();
    backbones = [];
    changes = 0;
  });
  afterEach(async () => {
    for (const b of backbones) await b.stop();
  });

  it('checks username rules, then client id rules, then rules for all; the first match decides', async () => {
    const s = await source();
    const rules: RuleStore = s.rules;
    assert.equal(s.authorize(client, pub('t/1')), 'nomatch');
    await rules.set('all', [{ permission: 'deny', action: 'all', topic: 't/#' }]);
    await rules.set({ clientid: 'dev-1' }, [{ permission: 'allow', action: 'publish', topic: 't/1' }]);
    await rules.set({ username: 'alice' }, [
      { permission: 'deny', action: 'publish', topic: 't/1', qos: [2] },
      { permission: 'allow', action: 'subscribe', topic: 't/${username}/#' },
    ]);
    assert.equal(s.authorize(client, pub('t/1', 2)), 'deny', 'username rule first');
    assert.equal(s.authorize(client, pub('t/1', 1)), 'allow', 'then the client id rule');
    assert.equal(s.authorize(client, pub('t/2')), 'deny', 'then the rule for all');
    assert.equal(s.authorize(client, sub('t/alice/x')), 'allow');
    assert.equal(s.authorize({ ...client, username: 'bob', clientId: 'dev-2' }, sub('t/alice/x')), 'deny');
    assert.equal(s.authorize({ ...client, username: 'bob', clientId: 'dev-2' }, pub('other')), 'nomatch');
    assert.equal(changes, 3, 'each change clears the caches');
    await rules.delete({ username: 'alice' });
    assert.equal(s.authorize(client, pub('t/1', 2)), 'allow');
    assert.equal(changes, 4);
  });

  it('the store checks rules, lists them and reports unknown owners', async () => {
    const s = await source();
    await assert.rejects(s.rules.set('all', [{ permission: 'maybe', action: 'all', topic: 't' } as never]), (e: unknown) => e instanceof ValidationError && /rules\[0\]\.permission/.test(e.message));
    await assert.rejects(s.rules.delete({ clientid: 'x' }), (e: unknown) => e instanceof NotFoundError && e.code === 'RULES_NOT_FOUND');
    await s.rules.set({ username: 'b' }, [{ permission: 'allow', action: 'publish', topic: 'x' }]);
    await s.rules.set({ clientid: 'a' }, [{ permission: 'deny', action: 'subscribe', topic: 'y', retain: 'all' }]);
    await s.rules.set('all', [{ permission: 'deny', action: 'all', topic: '#' }]);
    assert.deepEqual(
      s.rules.list().map((r) => r.owner),
      ['all', { clientid: 'a' }, { username: 'b' }],
    );
    assert.deepEqual(s.rules.get({ username: 'b' }), [{ permission: 'allow', action: 'publish', topic: 'x' }]);
    await s.rules.set({ username: 'b' }, []);
    assert.deepEqual(s.rules.get({ username: 'b' }), []);
  });

  it('rules set in another process apply here and clear the caches', async () => {
    const here = await source();
    const there = await source();
    const before = changes;
    await there.rules.set({ username: 'alice' }, [{ permission: 'deny', action: 'publish', topic: 'secret' }]);
    await here.rules.table.sync?.();
    assert.equal(here.authorize(client, pub('secret')), 'deny');
    assert.equal(changes, before + 2, 'the writer and the reader both cleared their caches');
  });
});
