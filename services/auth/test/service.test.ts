import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { MemoryBackbone } from '@tributary/backbone';
import { silentLogger } from '@tributary/common';
import { AuthorizeRequest, ClientInfo, Credentials, HookRegistry } from '@tributary/hooks';
import { AUTHENTICATORS, AUTHZ_SOURCES, AuthConfig, AuthnOutcome, AuthService, AuthzOutcome, ProviderContext } from '../src';

/**
 * The chain's semantics over the real hook registry, with providers defined here: each answers
 * what its configuration says, so the order and the skipping rules are what is tested.
 */
type Answer = AuthnOutcome | 'throw' | 'reject';
AUTHENTICATORS['test:fixed'] = {
  parse: (raw) => raw,
  create: (c: { answer: Record<string, Answer>; grantsAcl?: boolean }) => ({
    id: 'test:fixed',
    grantsAcl: c.grantsAcl,
    authenticate: (cred: Credentials) => {
      const a = c.answer[cred.username ?? ''] ?? { result: 'ignore' };
      if (a === 'throw') throw new Error('boom');
      if (a === 'reject') return Promise.reject(new Error('down'));
      return cred.clientId.startsWith('async') ? Promise.resolve(a) : a;
    },
  }),
};
let changed: (() => void) | undefined;
AUTHZ_SOURCES['test:topics'] = {
  parse: (raw) => raw,
  create: (c: { topics: Record<string, AuthzOutcome> }, ctx: ProviderContext) => {
    changed = () => ctx.rulesChanged();
    return { type: 'test:topics', authorize: (_client: ClientInfo, req: AuthorizeRequest) => c.topics[req.topic] ?? 'nomatch' };
  },
};

function config(authentication: unknown[], sources: unknown[] = [], authz: Partial<AuthConfig['authorization']> = {}): AuthConfig {
  return {
    authentication: authentication.map((config) => ({ id: 'test:fixed', enable: true, config })),
    authorization: { sources: sources.map((config) => ({ type: 'test:topics', enable: true, config })), no_match: 'allow', deny_action: 'ignore', cache: { enable: true, max_size: 4, ttl: 60_000 }, ...authz },
  } as AuthConfig;
}

async function service(cfg: AuthConfig, kick?: (id: string, rc: number) => void): Promise<{ hooks: HookRegistry; auth: AuthService }> {
  const hooks = new HookRegistry({ logger: silentLogger, timeoutMs: 1000 });
  const auth = new AuthService({ config: cfg, backbone: new MemoryBackbone(), hooks, logger: silentLogger, nodeName: 'n', dataDir: '/tmp', kick });
  await auth.start();
  return { hooks, auth };
}

const cred = (username: string, clientId = 'c1'): Credentials => ({ clientId, username, password: Buffer.from('p'), peerhost: '127.0.0.1', protocolVersion: 5 });
const client = (): ClientInfo => ({ clientId: 'c1', username: 'u', peerhost: '127.0.0.1', protocolVersion: 5, isSuperuser: false });
const pub = (topic: string): AuthorizeRequest => ({ action: 'publish', topic, qos: 0, retain: false });

describe('the authentication chain', () => {
  it('registers nothing for an empty chain: every client is allowed', async () => {
    const { hooks } = await service(config([]));
    assert.equal(hooks.has('client.authenticate'), false);
    assert.equal(hooks.has('client.authorize'), false);
  });

  it('registers client.authorize only when something can deny: sources, no_match deny, or an authenticator granting rules', async () => {
    assert.equal((await service(config([{ answer: {} }]))).hooks.has('client.authorize'), false);
    assert.equal((await service(config([{ answer: {}, grantsAcl: true }]))).hooks.has('client.authorize'), true);
    assert.equal((await service(config([{ answer: {} }], [], { no_match: 'deny' }))).hooks.has('client.authorize'), true);
  });

  it('passes an ignored client to the next authenticator; allow and deny end the chain', async () => {
    const { hooks, auth } = await service(config([{ answer: { bob: { result: 'deny' } } }, { answer: { alice: { result: 'allow', isSuperuser: true }, bob: { result: 'allow' } } }]));
    for (const id of ['c1', 'async-1']) {
      assert.deepEqual(await hooks.authenticate(cred('alice', id), { result: 'allow' }), { result: 'allow', isSuperuser: true, acl: undefined, expireAt: undefined, authData: undefined, clientAttrs: undefined });
      assert.deepEqual(await hooks.authenticate(cred('bob', id), { result: 'allow' }), { result: 'deny', reasonCode: 0x86 });
      // Every authenticator ignored carol: refused as not authorized.
      assert.deepEqual(await hooks.authenticate(cred('carol', id), { result: 'allow' }), { result: 'deny', reasonCode: 0x87 });
    }
    assert.equal(auth.metrics['authentication.success'], 2);
    assert.equal(auth.metrics['authentication.failure'], 4);
  });

  it('skips an authenticator that throws or rejects, as if it ignored the client', async () => {
    const { hooks } = await service(config([{ answer: { x: 'throw', y: 'reject' } }, { answer: { x: { result: 'allow' }, y: { result: 'allow' } } }]));
    assert.equal((await hooks.authenticate(cred('x'), { result: 'allow' })).result, 'allow');
    assert.equal((await hooks.authenticate(cred('y'), { result: 'allow' })).result, 'allow');
  });

  it('leaves an enhanced-authentication method no authenticator runs to the registry default (0x8C)', async () => {
    const { hooks } = await service(config([{ answer: { x: { result: 'allow' } } }]));
    const out = await hooks.authenticate({ ...cred('x'), authMethod: 'KERBEROS' }, { result: 'deny', reasonCode: 0x8c });
    assert.deepEqual(out, { result: 'deny', reasonCode: 0x8c });
  });
});

describe('authorization', () => {
  it("checks the client's own rules first, then the sources in order, then no_match", async () => {
    const { hooks } = await service(config([{ answer: {} }], [{ topics: { a: 'deny', b: 'nomatch' } }, { topics: { b: 'allow', c: 'deny' } }], { no_match: 'deny' }));
    const c = client();
    assert.equal(await hooks.authorize(c, pub('a'), 'allow'), 'deny');
    assert.equal(await hooks.authorize(c, pub('b'), 'allow'), 'allow');
    assert.equal(await hooks.authorize(c, pub('zzz'), 'allow'), 'deny');
    const own = { ...client(), acl: [{ permission: 'allow', who: 'all', action: 'all', topics: [{ filter: 'a' }] }] };
    assert.equal(await hooks.authorize(own, pub('a'), 'allow'), 'allow');
  });

  it('caches decisions per client until rules change, and keeps at most max_size', async () => {
    const topics: Record<string, AuthzOutcome> = { t: 'deny' };
    const { hooks, auth } = await service(config([], [{ topics }]));
    const c = client();
    assert.equal(await hooks.authorize(c, pub('t'), 'allow'), 'deny');
    topics.t = 'allow';
    assert.equal(await hooks.authorize(c, pub('t'), 'allow'), 'deny');
    assert.equal(auth.metrics['authorization.cache_hit'], 1);
    changed!();
    assert.equal(await hooks.authorize(c, pub('t'), 'allow'), 'allow');
    // Another client has its own cache.
    topics.t = 'deny';
    assert.equal(await hooks.authorize(client(), pub('t'), 'allow'), 'deny');
    for (const t of ['t1', 't2', 't3', 't4']) await hooks.authorize(c, pub(t), 'allow');
    topics.t = 'deny';
    assert.equal(await hooks.authorize(c, pub('t'), 'allow'), 'deny', 'the oldest entry (t) was evicted');
  });

  it('disconnects a denied client with deny_action = disconnect', async () => {
    const kicked: [string, number][] = [];
    const { hooks } = await service(config([], [{ topics: { t: 'deny' } }], { deny_action: 'disconnect' }), (id, rc) => kicked.push([id, rc]));
    assert.equal(await hooks.authorize(client(), pub('t'), 'allow'), 'deny');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(kicked, [['c1', 0x87]]);
  });
});
