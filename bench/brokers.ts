/** Starting, probing and stopping the brokers under test, each as its own child process. */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { generate } from 'selfsigned';

export const BROKERS = ['mosquitto', 'aedes', 'tributary'] as const;
export type BrokerName = (typeof BROKERS)[number];

/** Per-client outgoing QoS 1 window given to Mosquitto, matching Tributary's mqtt.max_inflight default. */
export const MOSQUITTO_MAX_INFLIGHT = 32;
/**
 * Mosquitto 2.0 reads one packet per socket per loop pass, so under QoS 1 fan-in the subscriber's PUBACKs
 * lag and delivered-but-unacknowledged messages pile up in its queue (hundreds of thousands within seconds).
 * With the default 1000 (or even 100k) it then drops QoS 1 messages; this limit keeps it lossless.
 */
export const MOSQUITTO_MAX_QUEUED = 1_000_000;
export const FD_LIMIT = 65_536;

export interface RunningBroker {
  name: BrokerName;
  pid: number;
  port: number;
  /** MQTT over TLS on 127.0.0.1, when the broker was started with certificate files. */
  tlsPort?: number;
  /** Resident set size of the broker's own pid, from /proc/<pid>/status. */
  rssBytes(): number;
  /** User + system CPU seconds of the broker's own pid, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  stop(): Promise<void>;
  /** Why the broker process is gone, with its last output lines; undefined while it runs. */
  exitReason(): string | undefined;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** A port that was free a moment ago: listen on 0, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function findMosquitto(): string | undefined {
  const dirs = ['/usr/sbin', '/usr/local/sbin', ...(process.env.PATH ?? '').split(':')];
  return dirs.map((d) => path.join(d, 'mosquitto')).find((p) => fs.existsSync(p));
}

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tributary-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

function readProc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readProc(pid, 'status'));
  return m ? Number(m[1]) * 1024 : NaN;
}

function cpuOf(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const stat = readProc(pid, 'stat');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

/** PEM certificate and key files for the TLS listeners, shared by all brokers of one run. */
export interface TlsFiles {
  cert: string;
  key: string;
}

let tlsFiles: Promise<TlsFiles> | undefined;

/** One self-signed EC P-256 certificate for localhost per bench run, in a temp dir removed at the end. */
export function benchTlsFiles(): Promise<TlsFiles> {
  tlsFiles ??= (async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' });
    const dir = tempDir('tls');
    const files = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    // World-readable: Mosquitto started as root drops to the `mosquitto` user before it reads them.
    // The key is a throwaway for loopback only.
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(files.cert, pems.cert, { mode: 0o644 });
    fs.writeFileSync(files.key, pems.private, { mode: 0o644 });
    return files;
  })();
  return tlsFiles;
}

interface Launch {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Temp dirs to remove once the broker has exited. */
  dirs?: string[];
}

async function launch(benchDir: string, repoRoot: string, name: BrokerName, port: number, tls?: { port: number; files: TlsFiles }): Promise<Launch> {
  switch (name) {
    case 'mosquitto': {
      const bin = findMosquitto();
      if (!bin) throw new Error('mosquitto not found: install the Debian package "mosquitto" (apt-get install -y mosquitto)');
      const dir = tempDir('mosquitto');
      const conf = path.join(dir, 'mosquitto.conf');
      fs.writeFileSync(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          ...(tls ? [`listener ${tls.port} 127.0.0.1`, `certfile ${tls.files.cert}`, `keyfile ${tls.files.key}`] : []),
          'allow_anonymous true',
          'max_connections -1',
          'persistence false',
          `max_inflight_messages ${MOSQUITTO_MAX_INFLIGHT}`,
          `max_queued_messages ${MOSQUITTO_MAX_QUEUED}`,
          'set_tcp_nodelay true',
          'log_dest stderr',
          'log_type error',
          'log_type warning',
          'connection_messages false',
          '',
        ].join('\n'),
      );
      return { cmd: bin, args: ['-c', conf], dirs: [dir] };
    }
    case 'aedes':
      return {
        cmd: process.execPath,
        args: [path.join(benchDir, 'aedes-server.js'), String(port), ...(tls ? [String(tls.port), tls.files.cert, tls.files.key] : [])],
      };
    case 'tributary': {
      const bin = path.join(repoRoot, 'services/cli/bin/tributary.js');
      if (!fs.existsSync(bin)) throw new Error(`${path.relative(repoRoot, bin)} does not exist`);
      const bind = async (): Promise<string> => `127.0.0.1:${await freePort()}`;
      const dataDir = tempDir('tributary');
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: `127.0.0.1:${port}`,
        TRIBUTARY_LISTENERS__WS__DEFAULT__BIND: await bind(),
        // The SSL and WSS listeners are on by default (0.0.0.0:8883/8084): keep them off shared ports.
        TRIBUTARY_LISTENERS__SSL__DEFAULT__BIND: tls ? `127.0.0.1:${tls.port}` : await bind(),
        TRIBUTARY_LISTENERS__WSS__DEFAULT__BIND: await bind(),
        ...(tls
          ? {
              TRIBUTARY_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__CERTFILE: tls.files.cert,
              TRIBUTARY_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__KEYFILE: tls.files.key,
            }
          : {}),
        TRIBUTARY_DASHBOARD__LISTENERS__HTTP__BIND: await bind(),
        TRIBUTARY_NODE__DATA_DIR: dataDir,
        TRIBUTARY_LOG__LEVEL: 'warn',
      };
      // BENCH_TRIBUTARY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the broker under load.
      const nodeArgs = (process.env.BENCH_TRIBUTARY_NODE_ARGS ?? '').split(' ').filter(Boolean);
      return { cmd: process.execPath, args: [...nodeArgs, bin, 'start'], env, dirs: [dataDir] };
    }
  }
}

/**
 * Starts a broker through `bash -c 'ulimit -n …; exec …'` so it gets a high fd limit even when the
 * bench was started from a shell with `ulimit -n 1024`; exec keeps the pid, so /proc/<pid> is the broker.
 */
export async function startBroker(benchDir: string, repoRoot: string, name: BrokerName, tlsFiles?: TlsFiles): Promise<RunningBroker> {
  const port = await freePort();
  const tls = tlsFiles ? { port: await freePort(), files: tlsFiles } : undefined;
  const { cmd, args, env, dirs = [] } = await launch(benchDir, repoRoot, name, port, tls);
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const child = spawn('bash', ['-c', script, 'bash', cmd, ...args], {
    cwd: repoRoot,
    env: env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      live.delete(child);
      exited = `exited with ${sig ?? `code ${code}`}`;
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedP;
      clearTimeout(t);
    }
    for (const d of dirs) {
      fs.rmSync(d, { recursive: true, force: true });
      tempDirs.delete(d);
    }
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${exited} before accepting connections: ${lastLine(tail)}`);
    }
    if ((await canConnect(port)) && (!tls || (await canConnect(tls.port)))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`port ${port} not accepting connections after 15 s: ${lastLine(tail)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid ?? 0;
  const exitReason = (): string | undefined => (exited ? `${exited}: ${lastLine(tail)}` : undefined);
  return { name, pid, port, ...(tls ? { tlsPort: tls.port } : {}), rssBytes: () => rssOf(pid), cpuSeconds: () => cpuOf(pid), stop, exitReason };
}

/** The broker's last words: error lines if there are any (warnings come first in logs), else the last lines. */
function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim());
  const errors = lines.filter((l) => /error|fatal|"level":\s*[56]0/i.test(l));
  const pick = (errors.length > 0 ? errors : lines).slice(-2).map((l) => l.trim().slice(0, 200));
  return pick.join(' | ') || '(no output)';
}

/** On Ctrl-C or a fatal error: SIGTERM every broker still running, SIGKILL after 5 s, remove temp dirs. */
export async function stopAll(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => (child.kill('SIGKILL'), resolve()), 5000).unref();
      }),
  );
  await Promise.all(waits);
  removeTempDirs();
}

/** Last resort from process.on('exit'), where nothing asynchronous runs: SIGTERM whatever is left. */
export function killAllNow(): void {
  for (const child of live) child.kill('SIGTERM');
  removeTempDirs();
}

export function removeTempDirs(): void {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}
