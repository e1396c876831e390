import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MemoryBackbone } from '@tributary/backbone';
import { ConfigError, ConfigProblem, silentLogger } from '@tributary/common';
import type { Credentials } from '@tributary/hooks';
import { AUTHENTICATORS, encodeUser, parseClientFirst, ProviderContext, ScramAuthenticator, ScramConfig, scramKeys } from '../src';

// RFC 7677 §3: SCRAM-SHA-256, user "user", password "pencil".
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const step = (data: string | Buffer | undefined, authContinue: boolean, clientId = 'c1'): Credentials => ({
  clientId,
  username: undefined,
  password: undefined,
  peerhost: '127.0.0.1',
  protocolVersion: 5,
  authMethod: 'SCRAM-SHA-256',
  authData: typeof data === 'string' ? Buffer.from(data) : data,
  authContinue,
});

function config(raw: Record<string, unknown> = {}): ScramConfig {
  const c = AUTHENTICATORS['scram:built_in_database']!.parse(raw);
  if (c instanceof ConfigProblem) throw new Error(c.message);
  return c as ScramConfig;
}

describe('SCRAM authenticator', () => {
  let backbone: MemoryBackbone;
  let ctx: ProviderContext;
  let dir: string;

  beforeEach(async () => {
    backbone = new MemoryBackbone();
    await backbone.start();
    dir = mkdtempSync(join(tmpdir(), 'tributary-scram-'));
    ctx = { backbone, logger: silentLogger, nodeName: 'n', dataDir: dir, rulesChanged: () => undefined };
  });
  afterEach(async () => {
    await backbone.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function withRfcUser(): Promise<ScramAuthenticator> {
    const a = new ScramAuthenticator(config(), ctx, () => RFC.serverNonce);
    await a.start();
    const keys = scramKeys('sha256', 'pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    const record = { v: 1, kind: 'scram', algorithm: 'sha256', salt: keys.salt.toString('hex'), stored_key: keys.storedKey.toString('hex'), server_key: keys.serverKey.toString('hex'), iterations: 4096, is_superuser: true } as const;
    await a.users.table.set('scram:user', encodeUser(record));
    return a;
  }

  it("runs RFC 7677's example exchange byte for byte", async () => {
    const a = await withRfcUser();
    assert.deepEqual(a.methods, ['SCRAM-SHA-256']);
    const first = a.authenticate(step(RFC.clientFirst, false));
    assert.deepEqual(first, { result: 'continue', authData: Buffer.from(RFC.serverFirst) });
    assert.equal(a.pendingExchanges, 1);
    const final = a.authenticate(step(RFC.clientFinal, true));
    assert.deepEqual(final, { result: 'allow', isSuperuser: true, authData: Buffer.from(RFC.serverFinal) });
    assert.equal(a.pendingExchanges, 0, 'the exchange is forgotten once done');
  });

  it('a wrong proof is denied with 0x86, and a final message replayed after that finds no exchange', async () => {
    const a = await withRfcUser();
    a.authenticate(step(RFC.clientFirst, false));
    const bad = RFC.clientFinal.replace('p=dHzb', 'p=dHzc');
    assert.deepEqual(a.authenticate(step(bad, true)), { result: 'deny', reasonCode: 0x86 });
    assert.deepEqual(a.authenticate(step(RFC.clientFinal, true)), { result: 'deny' });
    // Re-authentication: DISCONNECT has no 0x86, the chain's default (0x87) applies.
    a.authenticate({ ...step(RFC.clientFirst, false), reauthenticate: true });
    assert.deepEqual(a.authenticate({ ...step(bad, true), reauthenticate: true }), { result: 'deny' });
  });

  it('unknown users are ignored (the next authenticator decides)', async () => {
    const a = await withRfcUser();
    assert.deepEqual(a.authenticate(step('n,,n=nobody,r=abc', false)), { result: 'ignore' });
  });

  it('garbage is denied without throwing', async () => {
    const a = await withRfcUser();
    const firsts: (string | Buffer | undefined)[] = [
      undefined,
      '',
      'hello',
      'p=tls-unique,,n=user,r=abc',
      'n,,r=abc,n=user',
      'n,,n=user',
      'n,,n=us=er,r=abc',
      'n,,n=user,r=a,b',
      'n,a=other,n=user,r=abc',
      'n,,m=ext,n=user,r=abc',
      Buffer.from([0xff, 0xfe, 0x00, 0x01]),
      'n,,n=user,r=' + 'x'.repeat(5000),
    ];
    for (const f of firsts) assert.deepEqual(a.authenticate(step(f, false)), { result: 'deny' }, String(f));
    const finals = ['', 'c=biws', 'c=biws,r=wrong,p=AAAA', 'c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', RFC.clientFinal.replace(/p=.*/, 'p=!!!!'), RFC.clientFinal.replace(/p=.*/, 'p=AAAA')];
    for (const f of finals) {
      a.authenticate(step(RFC.clientFirst, false));
      const out = a.authenticate(step(f, true));
      assert.equal(out.result, 'deny', f);
    }
    assert.deepEqual(a.authenticate(step(RFC.clientFinal, true, 'never-started')), { result: 'deny' });
    // The parser accepts what it should: an escaped name, an authzid equal to it, extensions.
    assert.equal(parseClientFirst(Buffer.from('n,a=a=2Cb,n=a=2Cb,r=xyz,x=ext'))?.username, 'a,b');
    assert.equal(parseClientFirst(Buffer.from('y,,n=u,r=xyz'))?.gs2Header, 'y,,');
  });

  it('the store makes users from passwords and the bootstrap file adds the missing ones', async () => {
    const f = join(dir, 'scram.csv');
    writeFileSync(f, 'user_id,password,is_superuser\nalice,secret,true\nbob,pw,false\n');
    const a = new ScramAuthenticator(config({ bootstrap_file: f, iteration_count: 100 }), ctx, () => 'SRV');
    await a.start();
    assert.deepEqual(a.users.list(), [
      { user_id: 'alice', is_superuser: true },
      { user_id: 'bob', is_superuser: false },
    ]);
    const rec = a.users.record('alice');
    assert.ok(rec?.kind === 'scram');
    assert.equal(rec.iterations, 100);
    const keys = scramKeys('sha256', 'secret', Buffer.from(rec.salt, 'hex'), 100);
    assert.equal(rec.stored_key, keys.storedKey.toString('hex'));
    assert.equal(rec.server_key, keys.serverKey.toString('hex'));

    writeFileSync(f, 'user_id,stored_key,server_key,salt,is_superuser\ncarol,abcd,abcd,00,false\n');
    const h = new ScramAuthenticator(config({ bootstrap_file: f, bootstrap_type: 'hash' }), ctx);
    await assert.rejects(h.start(), (e: unknown) => e instanceof ConfigError && /scram:built_in_database: bootstrap_file .* line 2: stored_key must be 32 bytes in hex/.test(e.message));
  });

  it('configuration problems name the field', () => {
    const spec = AUTHENTICATORS['scram:built_in_database']!;
    assert.match((spec.parse({ algorithm: 'md5' }) as ConfigProblem).message, /"algorithm" must be sha256 or sha512/);
    assert.match((spec.parse({ iteration_count: 0 }) as ConfigProblem).message, /"iteration_count"/);
    assert.deepEqual(spec.parse({}), { algorithm: 'sha256', iteration_count: 4096, bootstrap_type: 'plain' });
    assert.deepEqual(new ScramAuthenticator(config({ algorithm: 'sha512' }), ctx).methods, ['SCRAM-SHA-512']);
  });
});
