import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Service, ServiceGraphError, ServiceHost, ServiceStartError, ServiceStopError, silentLogger } from '../src';

/** A service that records its start and stop in a shared journal, and can be told to fail. */
class JournalService implements Service {
  constructor(
    readonly name: string,
    private readonly journal: string[],
    readonly dependsOn: readonly string[] = [],
    private readonly fail: { start?: Error; stop?: Error } = {},
  ) {}

  async start(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.fail.start) throw this.fail.start;
    this.journal.push(`start ${this.name}`);
  }

  async stop(): Promise<void> {
    if (this.fail.stop) throw this.fail.stop;
    this.journal.push(`stop ${this.name}`);
  }
}

function host(...services: Service[]): ServiceHost {
  const h = new ServiceHost(silentLogger);
  for (const s of services) h.add(s);
  return h;
}

describe('service host', () => {
  it('starts dependencies first, otherwise in registration order, and stops in reverse', async () => {
    const journal: string[] = [];
    const h = host(
      new JournalService('gateway', journal, ['broker']),
      new JournalService('backbone', journal),
      new JournalService('broker', journal, ['backbone']),
      new JournalService('api', journal),
    );
    await h.start();
    assert.deepEqual(journal, ['start backbone', 'start broker', 'start gateway', 'start api']);
    assert.deepEqual(h.running, ['backbone', 'broker', 'gateway', 'api']);
    journal.length = 0;
    await h.stop();
    assert.deepEqual(journal, ['stop api', 'stop gateway', 'stop broker', 'stop backbone']);
    assert.deepEqual(h.running, []);
    await h.stop();
    assert.deepEqual(journal.length, 4, 'a second stop stops nothing again');
  });

  it('refuses a duplicate name, an unknown dependency and a cycle, naming the services', async () => {
    const j: string[] = [];
    const cases: [ServiceHost, RegExp][] = [
      [host(new JournalService('broker', j), new JournalService('broker', j)), /service broker is registered twice/],
      [host(new JournalService('gateway', j, ['brokr'])), /service gateway depends on brokr, which is not registered/],
      [host(new JournalService('a', j, ['b']), new JournalService('b', j, ['c']), new JournalService('c', j, ['a'])), /cycle: a -> b -> c -> a/],
    ];
    for (const [h, message] of cases) {
      await assert.rejects(h.start(), (err: unknown) => err instanceof ServiceGraphError && err.code === 'SERVICE_GRAPH' && message.test(err.message));
    }
    assert.deepEqual(j, [], 'nothing starts when the graph is invalid');
  });

  it('a failed start stops what already started, last first, and names the service with the cause', async () => {
    const journal: string[] = [];
    const cause = new Error('listen EADDRINUSE 127.0.0.1:1883');
    const h = host(
      new JournalService('backbone', journal),
      new JournalService('broker', journal, ['backbone']),
      new JournalService('gateway', journal, ['broker'], { start: cause }),
      new JournalService('api', journal),
    );
    await assert.rejects(h.start(), (err: unknown) => {
      assert.ok(err instanceof ServiceStartError);
      assert.equal(err.service, 'gateway');
      assert.equal(err.cause, cause);
      assert.match(err.message, /service gateway failed to start: listen EADDRINUSE 127\.0\.0\.1:1883/);
      return true;
    });
    assert.deepEqual(journal, ['start backbone', 'start broker', 'stop broker', 'stop backbone']);
    assert.deepEqual(h.running, []);
  });

  it('a failing stop does not keep the others from stopping, and is reported by name', async () => {
    const journal: string[] = [];
    const h = host(new JournalService('backbone', journal), new JournalService('gateway', journal, ['backbone'], { stop: new Error('socket stuck') }));
    await h.start();
    await assert.rejects(h.stop(), (err: unknown) => err instanceof ServiceStopError && /service gateway failed to stop/.test(err.message));
    assert.deepEqual(journal, ['start backbone', 'start gateway', 'stop backbone']);
  });

  it('logs each service started and stopped with how long it took', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const h = new ServiceHost(log).add(new JournalService('backbone', []));
    await h.start();
    await h.stop();
    const started = lines.find((l) => l.msg === 'service started');
    assert.equal(started?.service, 'backbone');
    assert.equal(typeof started?.ms, 'number');
    assert.ok(lines.some((l) => l.msg === 'service stopped' && l.service === 'backbone'));
  });
});
