import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = join(__dirname, '..', '..', '..');
export const BIN = join(ROOT, 'services', 'cli', 'bin', 'tributary.js');
/** The Node.js flags every start path of Tributary uses: tests run the broker as users do. */
export const NODE_FLAGS = JSON.parse(readFileSync(join(ROOT, 'services', 'cli', 'bin', 'node-flags.json'), 'utf8')) as string[];

export interface BrokerOptions {
  /** Node.js flags instead of NODE_FLAGS (what the shipped start paths pass). */
  nodeFlags?: readonly string[];
  /** Extra TRIBUTARY_* variables. */
  env?: Record<string, string>;
  /** Reuse a data directory (restart tests). */
  dataDir?: string;
  /** Keep the data directory when stopping (the caller removes it). */
  keepDataDir?: boolean;
  /** The tributary command (default `start`; `gateway`, `router`, `retain` run one service). */
  command?: string;
  /** How long start-up may take before the process is killed and startBroker rejects with its log (default 30 s). */
  startTimeoutMs?: number;
  /** The broker's working directory (relative paths in its configuration resolve from it); default: the test's. */
  cwd?: string;
}

/** A real broker process on random loopback ports with its own data directory. */
export interface BrokerProcess {
  proc: ChildProcess;
  dataDir: string;
  mqttPort: number;
  wsPort: number;
  httpPort: number;
  sslPort: number;
  wssPort: number;
  /** Every JSON log line the broker wrote so far. */
  logs: Record<string, unknown>[];
  url: string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit; removes the data directory like stop() does. */
  kill9(): Promise<void>;
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/**
 * Starts `tributary start` (or opts.command) and resolves once it logged "tributary started";
 * rejects with the broker's output if it exits first or is not started within opts.startTimeoutMs.
 */
export async function startBroker(opts: BrokerOptions = {}): Promise<BrokerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tributary-test-'));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    TRIBUTARY_NODE__DATA_DIR: dataDir,
    TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: '127.0.0.1:0',
    TRIBUTARY_LISTENERS__WS__DEFAULT__BIND: '127.0.0.1:0',
    TRIBUTARY_LISTENERS__SSL__DEFAULT__BIND: '127.0.0.1:0',
    TRIBUTARY_LISTENERS__WSS__DEFAULT__BIND: '127.0.0.1:0',
    TRIBUTARY_DASHBOARD__LISTENERS__HTTP__BIND: '127.0.0.1:0',
    TRIBUTARY_LOG__LEVEL: 'info',
    ...opts.env,
  };
  const proc = spawn(process.execPath, [...(opts.nodeFlags ?? NODE_FLAGS), BIN, opts.command ?? 'start'], { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ports = { tcp: 0, ws: 0, http: 0, ssl: 0, wss: 0 };
  const lines = createInterface({ input: proc.stdout! });
  const output = (): string => `${stderr}\n${logs.map((l) => JSON.stringify(l)).join('\n')}`;
  const ownsDataDir = !opts.keepDataDir && !opts.dataDir;
  const removeDataDir = (): void => {
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  let deadline: NodeJS.Timeout | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    deadline = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`broker (${opts.command ?? 'start'}) not started within ${startTimeoutMs} ms; its output:\n${output()}`));
    }, startTimeoutMs);
    lines.on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(rec);
      const bind = typeof rec.bind === 'string' ? Number(rec.bind.split(':').pop()) : 0;
      if (rec.listener === 'tcp:default') ports.tcp = bind;
      if (rec.listener === 'ws:default') ports.ws = bind;
      if (rec.listener === 'ssl:default') ports.ssl = bind;
      if (rec.listener === 'wss:default') ports.wss = bind;
      if (rec.listener === 'dashboard:http') ports.http = bind;
      if (rec.msg === 'tributary started') resolve();
    });
    proc.once('exit', (code) => reject(new Error(`broker exited with ${code} before it started:\n${output()}`)));
  });
  try {
    await ready;
  } catch (err) {
    await exited(proc);
    removeDataDir();
    throw err;
  } finally {
    clearTimeout(deadline);
  }
  const b: BrokerProcess = {
    proc,
    dataDir,
    mqttPort: ports.tcp,
    wsPort: ports.ws,
    httpPort: ports.http,
    sslPort: ports.ssl,
    wssPort: ports.wss,
    logs,
    url: `mqtt://127.0.0.1:${ports.tcp}`,
    async stop() {
      proc.kill('SIGTERM');
      const code = await exited(proc);
      removeDataDir();
      return code;
    },
    async kill9() {
      proc.kill('SIGKILL');
      await exited(proc);
      removeDataDir();
    },
  };
  return b;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tributary-test-'));
}

/**
 * The environment of one process of a scaled-out installation over the test Kafka
 * (TRIBUTARY_TEST_KAFKA): its node name, the installation's topic prefix, no TLS listeners.
 */
export function kafkaNodeEnv(name: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TRIBUTARY_NODE__NAME: name,
    TRIBUTARY_BACKBONE__TYPE: 'kafka',
    TRIBUTARY_BACKBONE__KAFKA__BROKERS: process.env.TRIBUTARY_TEST_KAFKA ?? '',
    TRIBUTARY_BACKBONE__TOPIC_PREFIX: prefix,
    TRIBUTARY_LISTENERS__SSL__DEFAULT__ENABLE: 'false',
    TRIBUTARY_LISTENERS__WSS__DEFAULT__ENABLE: 'false',
    ...extra,
  };
}

/** An `api_key.bootstrap_file` with one key, in a temp directory, and the Authorization header that key makes. */
export function apiKeyFile(key = 'ops', secret = 'ops-secret'): { file: string; auth: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-keys-'));
  const file = join(dir, 'api_keys');
  writeFileSync(file, `${key}:${secret}\n`);
  return { file, auth: `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * For a failure's report: each process's last warnings and errors (kafkajs's own retry noise left
 * out), and the lines matching `also` whatever their level.
 */
export function printWarnings(procs: Record<string, BrokerProcess>, also?: RegExp): void {
  for (const [name, p] of Object.entries(procs)) {
    const lines = p.logs.filter((x) => (Number(x.level) >= 40 && !/^kafkajs|consumer crashed/.test(String(x.msg))) || also?.test(String(x.msg)));
    for (const l of lines.slice(-30)) console.log(`[${name}]`, String(l.msg).slice(0, 200), JSON.stringify(l.err ?? '').slice(0, 300));
  }
}
