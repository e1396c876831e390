import type { Backbone, Table } from '@tributary/backbone';
import type { PersistedSession } from './types';

/**
 * Where persistent sessions live between connections and across restarts. Writes are
 * batched: `save` and `remove` calls in one event-loop turn become one durable write, and
 * the returned promise resolves once that write is durable.
 */
export interface SessionStore {
  loadAll(): Promise<PersistedSession[]>;
  save(session: PersistedSession): Promise<void>;
  remove(clientId: string): Promise<void>;
  /** Resolves when everything saved so far is durable. */
  flush(): Promise<void>;
}

/** Keeps sessions in memory only: for tests and for brokers that need no durability. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, string>();

  async loadAll(): Promise<PersistedSession[]> {
    return [...this.sessions.values()].map((s) => JSON.parse(s) as PersistedSession);
  }
  async save(session: PersistedSession): Promise<void> {
    this.sessions.set(session.clientId, JSON.stringify(session));
  }
  async remove(clientId: string): Promise<void> {
    this.sessions.delete(clientId);
  }
  async flush(): Promise<void> {}
}

/** Sessions in the backbone's compacted `sessions` table, keyed by client id. */
export class BackboneSessionStore implements SessionStore {
  private pending = new Map<string, Buffer | null>();
  private waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private scheduled = false;
  private lastWrite: Promise<void> = Promise.resolve();

  private constructor(private readonly table: Table) {}

  static async open(backbone: Backbone, name = 'sessions'): Promise<BackboneSessionStore> {
    return new BackboneSessionStore(await backbone.table(name));
  }

  async loadAll(): Promise<PersistedSession[]> {
    const out: PersistedSession[] = [];
    for (const [, value] of this.table.entries()) out.push(JSON.parse(value.toString('utf8')) as PersistedSession);
    return out;
  }

  save(session: PersistedSession): Promise<void> {
    return this.enqueue(session.clientId, Buffer.from(JSON.stringify(session)));
  }

  remove(clientId: string): Promise<void> {
    return this.enqueue(clientId, null);
  }

  async flush(): Promise<void> {
    if (this.pending.size) await this.enqueue(null, null);
    await this.lastWrite;
  }

  private enqueue(clientId: string | null, value: Buffer | null): Promise<void> {
    if (clientId !== null) this.pending.set(clientId, value);
    const done = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.write());
    }
    return done;
  }

  private write(): void {
    this.scheduled = false;
    const changes = [...this.pending];
    const waiting = this.waiting;
    this.pending = new Map();
    this.waiting = [];
    this.lastWrite = this.table.apply(changes).then(
      () => waiting.forEach((w) => w.resolve()),
      (err: Error) => waiting.forEach((w) => w.reject(err)),
    );
  }
}
