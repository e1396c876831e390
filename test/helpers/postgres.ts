import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';

/** A PostgreSQL server of this test file's own: what a client needs to reach it, and stop(). */
export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** "host:port", EMQX's `server` form. */
  server: string;
  /** The server's log so far (for failure messages). */
  log(): string;
  /** Fast shutdown (SIGINT), SIGKILL after 10 s; removes the data directory. */
  stop(): Promise<void>;
}

const PG_ROOT = '/usr/lib/postgresql';

/** sh -c script, arguments: owner pid, server pid, directory. Stops the server and removes its directory once the owner is gone. */
const WATCHDOG = [
  'trap "" HUP INT',
  'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done',
  'kill -INT "$2" 2>/dev/null',
  'for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$2" 2>/dev/null || break; sleep 1; done',
  'kill -KILL "$2" 2>/dev/null',
  'rm -rf "$3"',
].join('; ');

/** The bin directory of the newest PostgreSQL installed the Debian way, or undefined. */
export function postgresBinDir(): string | undefined {
  if (!existsSync(PG_ROOT)) return undefined;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(PG_ROOT, versions[0], 'bin');
}

/** The uid and gid of the `postgres` OS user when running as root (initdb refuses root), else undefined. */
function serverIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('running as root, but there is no "postgres" user to run PostgreSQL as (apt-get install postgresql creates it)');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

/**
 * Starts a PostgreSQL server (Debian's binaries, /usr/lib/postgresql/<version>/bin) in a fresh
 * temporary directory on a random free loopback port, with password (SCRAM) authentication on
 * 127.0.0.1, waits until it accepts connections and creates `database`. As root it runs as the
 * `postgres` user. The server is a child of this process, and a watchdog stops it when this
 * process dies without calling stop() (the idea of KAFKA_OWNER_PID in deploy/kafka/kafka.sh).
 */
export async function startPostgres(opts: { database?: string; startTimeoutMs?: number } = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(`no PostgreSQL under ${PG_ROOT}/*/bin: apt-get install -y postgresql (.ci/run does this)`);
  const ids = serverIds();
  const dir = mkdtempSync(join(tmpdir(), 'tributary-pg-'));
  const data = join(dir, 'data');
  const user = 'tributary';
  const password = `pw-${process.pid}-${Date.now()}`;
  const database = opts.database ?? 'tributary_test';
  const asServer = ids ? { uid: ids.uid, gid: ids.gid } : {};
  try {
    writeFileSync(join(dir, 'pwfile'), `${password}\n`, { mode: 0o600 });
    if (ids) {
      chownSync(dir, ids.uid, ids.gid);
      chownSync(join(dir, 'pwfile'), ids.uid, ids.gid);
    }
    const init = spawnSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', user, `--pwfile=${join(dir, 'pwfile')}`, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'],
      { ...asServer, cwd: dir, encoding: 'utf8' },
    );
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}):\n${init.stdout}\n${init.stderr}`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const port = await freePort();
  const settings = { listen_addresses: '127.0.0.1', port: String(port), unix_socket_directories: dir, fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '100', shared_buffers: '16MB' };
  const args = ['-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const proc = spawn(join(bin, 'postgres'), args, { ...asServer, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer): void => {
    log = (log + d.toString()).slice(-64 * 1024);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  // The watchdog: a detached shell that outlives a SIGKILLed test process and then stops the server.
  const watchdog = spawn(
    'sh',
    ['-c', WATCHDOG, 'pg-watchdog', String(process.pid), String(proc.pid), dir],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  const killOnExit = (): void => {
    proc.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('exit', killOnExit);
      proc.kill('SIGINT');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited(proc);
      clearTimeout(t);
      watchdog.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    })());

  const host = '127.0.0.1';
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`postgres exited (${proc.exitCode ?? proc.signalCode}) before accepting connections:\n${log}`);
      const c = new Client({ host, port, user, password, database: 'postgres', connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.query(`CREATE DATABASE ${database}`);
        await c.end();
        break;
      } catch (err) {
        await c.end().catch(() => undefined);
        // 57P03: the database system is starting up; ECONNREFUSED: not listening yet.
        if (Date.now() > deadline) throw new Error(`postgres not accepting connections within ${timeoutMs} ms (${(err as Error).message}):\n${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, port, user, password, database, server: `${host}:${port}`, log: () => log, stop };
}

/** Runs SQL statements on the server's database with a short-lived client (test setup). */
export async function sql(pg: PostgresServer, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new Client({ host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: pg.database });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}
