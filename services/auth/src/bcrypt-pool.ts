import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * bcrypt off the event loop. bcryptjs is pure JavaScript: one hash at EMQX's default cost (10)
 * takes tens of milliseconds of CPU, and its "async" API runs it on the main thread in slices of
 * up to 100 ms, so a burst of CONNECTs would stall every client's messages. Here hashes run in a
 * few worker threads (one fewer than the cores, at least one, at most four), started on first use;
 * an idle one never keeps a process alive. Requests queue per worker; the least busy one
 * takes the next.
 */

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const bcrypt = require(${JSON.stringify(require.resolve('bcryptjs'))});
parentPort.on('message', ({ id, password, salt }) => {
  try {
    parentPort.postMessage({ id, hash: bcrypt.hashSync(password, salt) });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface Pending {
  resolve(hash: string): void;
  reject(err: Error): void;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, Pending>;
}

const SIZE = Math.min(4, Math.max(1, availableParallelism() - 1));
const workers: PoolWorker[] = [];
let nextId = 0;

function spawn(): PoolWorker {
  const w: PoolWorker = { worker: new Worker(SOURCE, { eval: true }), pending: new Map() };
  w.worker.on('message', (m: { id: number; hash?: string; error?: string }) => {
    const p = w.pending.get(m.id);
    if (!p) return;
    w.pending.delete(m.id);
    if (w.pending.size === 0) w.worker.unref();
    if (m.hash !== undefined) p.resolve(m.hash);
    else p.reject(new Error(m.error ?? 'bcrypt failed'));
  });
  // A worker that dies fails what it held and is replaced on the next request.
  const fail = (err: Error): void => {
    const i = workers.indexOf(w);
    if (i >= 0) workers.splice(i, 1);
    for (const p of w.pending.values()) p.reject(err);
    w.pending.clear();
  };
  w.worker.on('error', fail);
  w.worker.on('exit', (code) => fail(new Error(`bcrypt worker exited with ${code}`)));
  // Idle workers never keep the process alive; busy ones do (bcryptHash refs them).
  w.worker.unref();
  return w;
}

function leastBusy(): PoolWorker {
  if (workers.length < SIZE) {
    const idle = workers.find((w) => w.pending.size === 0);
    if (idle) return idle;
    const w = spawn();
    workers.push(w);
    return w;
  }
  return workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
}

/** bcrypt of `password` (a string: bcryptjs hashes its UTF-8 bytes) with a bcrypt salt string, in a worker thread. */
export function bcryptHash(password: string, salt: string): Promise<string> {
  const w = leastBusy();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (w.pending.size === 0) w.worker.ref();
    w.pending.set(id, { resolve, reject });
    w.worker.postMessage({ id, password, salt });
  });
}
