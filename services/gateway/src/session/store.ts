import type { Backbone, Table } from '@tributary/backbone';
import { silentLogger, Logger } from '@tributary/common';
import { RecordReader, sessionCodec } from '@tributary/records';
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

/** Keeps sessions in memory only (encoded, as stored): for tests and for brokers that need no durability. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, Buffer>();

  async loadAll(): Promise<PersistedSession[]> {
    return [...this.sessions].map(([clientId, value]) => sessionCodec.decode(value, clientId));
  }
  async save(session: PersistedSession): Promise<void> {
    this.sessions.set(session.clientId, sessionCodec.encode(session));
  }
  async remove(clientId: string): Promise<void> {
    this.sessions.delete(clientId);
  }
  async flush(): Promise<void> {}
}

/**
 * Sessions in the backbone's compacted `sessions` table, keyed by client id (records:
 * io.tributary.v2.Session; an undecodable one is reported and skipped at load).
 */
export class BackboneSessionStore implements SessionStore {
  private pending = new Map<string, Buffer | null>();
  private waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private scheduled = false;
  private lastWrite: Promise<void> = Promise.resolve();

  /** Records of the table that could not be decoded (reported and skipped). */
  readonly records: RecordReader<PersistedSession>;

  private constructor(
    private readonly table: Table,
    private readonly log: Logger,
  ) {
    this.records = new RecordReader(sessionCodec, table.name, log);
  }

  static async open(backbone: Backbone, name = 'sessions', log: Logger = silentLogger): Promise<BackboneSessionStore> {
    return new BackboneSessionStore(await backbone.table(name), log);
  }

  async loadAll(): Promise<PersistedSession[]> {
    const out: PersistedSession[] = [];
    for (const [clientId, value] of this.table.entries()) {
      const s = this.records.read(clientId, value, this.table.offsetOf(clientId));
      if (s) out.push(s);
    }
    return out;
  }

  save(session: PersistedSession): Promise<void> {
    return this.enqueue(session.clientId, sessionCodec.encode(session));
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
    // Callers that do not wait (session changes written in the background) must not turn a
    // failed write (Kafka stalled past stall_timeout) into an unhandled rejection: write() logs it.
    done.catch(() => undefined);
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
      (err: Error) => {
        // A Kafka stall is logged once per episode by the backbone.
        if ((err as { code?: string }).code !== 'BACKBONE_STALLED') this.log.warn({ err, sessions: changes.length }, 'session store write failed');
        waiting.forEach((w) => w.reject(err));
      },
    );
  }
}
