import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PersistedSession, SessionStore } from '../src';

/**
 * The behaviour every SessionStore must show, through the interface only (how a record is
 * encoded is the store's business). `open` gives a store on fresh storage and `reopen` a new
 * store over the same storage (after what the old one flushed); `cleanup` releases both.
 */
export type SessionStoreFactory = () => Promise<{
  store: SessionStore;
  reopen: () => Promise<SessionStore>;
  cleanup: () => Promise<void>;
}>;

let n = 0;
export function sessionRecord(clientId: string, more: Partial<PersistedSession> = {}): PersistedSession {
  return {
    clientId,
    protocolVersion: 5,
    expiryInterval: 3600,
    subscriptions: [],
    cursor: n++,
    inflight: [],
    awaitingRel: [],
    disconnectedAt: null,
    ...more,
  };
}

const byId = (list: PersistedSession[]): Map<string, PersistedSession> => new Map(list.map((s) => [s.clientId, s]));

export function runSessionStoreSuite(name: string, factory: SessionStoreFactory): void {
  const test = (title: string, fn: (h: Awaited<ReturnType<SessionStoreFactory>>) => Promise<void>): void => {
    it(title, { timeout: 20_000 }, async () => {
      const h = await factory();
      try {
        await fn(h);
      } finally {
        await h.cleanup();
      }
    });
  };

  describe(`SessionStore suite: ${name}`, () => {
    test('an empty store loads nothing', async ({ store }) => {
      assert.deepEqual(await store.loadAll(), []);
    });

    test('saved records load back whole: subscriptions, in-flight, awaitingRel, ownership', async ({ store }) => {
      const full = sessionRecord('full', {
        subscriptions: [
          ['a/+', { qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 0, subscriptionId: 7 }],
          ['$share/g/b/#', { qos: 2, noLocal: false, retainAsPublished: true, retainHandling: 2 }],
        ],
        inflight: [
          [12, 1, 1, 1],
          [13, 2, 2, 2],
        ],
        awaitingRel: [5, 65535],
        disconnectedAt: 1_700_000_000_000,
        expiryInterval: 0xffffffff,
        protocolVersion: 4,
        owner: 'gw-1',
        epoch: 3,
      });
      await store.save(full);
      await store.save(sessionRecord('plain'));
      const loaded = byId(await store.loadAll());
      assert.equal(loaded.size, 2);
      assert.deepEqual(loaded.get('full'), full);
    });

    test('the last save of a client id wins; remove deletes it; removing an unknown id is fine', async ({ store }) => {
      await store.save(sessionRecord('c', { cursor: 1 }));
      await store.save(sessionRecord('c', { cursor: 2 }));
      await store.save(sessionRecord('d'));
      await store.remove('d');
      await store.remove('never-saved');
      const all = await store.loadAll();
      assert.deepEqual(all.map((s) => [s.clientId, s.cursor]), [['c', 2]]);
    });

    test('the changes of one turn are stored together: the first promise resolves after the last change is stored', async ({ store, reopen }) => {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) pending.push(store.save(sessionRecord(`s${i % 10}`, { cursor: i })));
      pending.push(store.remove('s3'));
      const check = (list: PersistedSession[]): void => {
        const got = byId(list);
        assert.equal(got.size, 9);
        assert.equal(got.has('s3'), false);
        assert.equal(got.get('s9')?.cursor, 99, 'the last save of an id wins');
      };
      await pending[0];
      check(await (await reopen()).loadAll());
      await Promise.all(pending);
    });

    test('flush resolves once everything saved before it is stored', async ({ store, reopen }) => {
      await store.flush();
      void store.save(sessionRecord('f1'));
      void store.save(sessionRecord('f2'));
      void store.remove('f2');
      await store.flush();
      assert.deepEqual((await (await reopen()).loadAll()).map((s) => s.clientId), ['f1']);
    });

    test('a reopened store sees what was stored, and changes it', async ({ store, reopen }) => {
      await store.save(sessionRecord('r1', { cursor: 10 }));
      await store.save(sessionRecord('r2'));
      const again = await reopen();
      assert.deepEqual([...byId(await again.loadAll()).keys()].sort(), ['r1', 'r2']);
      await again.remove('r2');
      await again.save(sessionRecord('r1', { cursor: 11 }));
      const third = await reopen();
      assert.deepEqual((await third.loadAll()).map((s) => [s.clientId, s.cursor]), [['r1', 11]]);
    });
  });
}
