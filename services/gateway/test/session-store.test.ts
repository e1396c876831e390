import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafkaBackbone, EmbeddedBackbone, MemoryBackbone, MemoryBackboneStorage, type Backbone } from '@tributary/backbone';
import { BackboneSessionStore, MemorySessionStore, type SessionStore } from '../src';
import { runSessionStoreSuite } from './session-store-suite';

/** A store on a backbone from `start`; reopening stops that backbone and opens a store on a new one over the same storage. */
async function onBackbone(start: () => Promise<Backbone>, release: () => Promise<void> = async () => undefined) {
  let backbone = await start();
  return {
    store: (await BackboneSessionStore.open(backbone)) as SessionStore,
    reopen: async () => {
      await backbone.stop();
      backbone = await start();
      return BackboneSessionStore.open(backbone);
    },
    cleanup: async () => {
      await backbone.stop();
      await release();
    },
  };
}

// The process is its storage: "reopening" is the same store.
runSessionStoreSuite('MemorySessionStore', async () => {
  const store = new MemorySessionStore();
  return { store, reopen: async () => store, cleanup: async () => undefined };
});

runSessionStoreSuite('BackboneSessionStore over MemoryBackbone', async () => {
  const storage = new MemoryBackboneStorage();
  return onBackbone(async () => {
    const b = new MemoryBackbone({ storage });
    await b.start();
    return b;
  });
});

runSessionStoreSuite('BackboneSessionStore over EmbeddedBackbone', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-sessions-'));
  return onBackbone(
    async () => {
      const b = new EmbeddedBackbone({ dataDir });
      await b.start();
      return b;
    },
    () => rm(dataDir, { recursive: true, force: true }),
  );
});

// Like libs/backbone/test/kafka.test.ts: the Kafka at TRIBUTARY_TEST_KAFKA (test/run.js starts one when it is unset); never skipped.
const kafka = process.env['TRIBUTARY_TEST_KAFKA'] ?? '';
const runPrefix = `tributary-test-sessions-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}.`;
let harnesses = 0;
runSessionStoreSuite('BackboneSessionStore over Kafka', async () => {
  if (kafka === '') throw new Error('TRIBUTARY_TEST_KAFKA (host:port) is not set: run the tests with node test/run.js');
  const topicPrefix = `${runPrefix}${++harnesses}.`;
  return onBackbone(async () => {
    const b = await createKafkaBackbone({ brokers: [kafka], clientId: 'tributary-test', topicPrefix });
    await b.start();
    return b;
  });
});
