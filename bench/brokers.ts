/**
 * Starting, probing and stopping the brokers under test, each as its own child process (Tributary
 * scaled out over Kafka: four processes, plus the Kafka broker they share).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { generate } from 'selfsigned';

export const BROKERS = ['mosquitto', 'aedes', 'tributary', 'tributary-kafka'] as const;
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
/**
 * What the open-loop scenarios' Mosquitto runs with: its own defaults for everything about delivery (a config
 * file with only the listener, anonymous access and logging). Mosquitto 2.0's defaults, for the record.
 */
export const MOSQUITTO_DEFAULTS = 'Mosquitto defaults: max_inflight_messages 20, max_queued_messages 1000, set_tcp_nodelay false';

/** How a scenario wants its broker started. */
export interface StartOptions {
  tls?: TlsFiles;
  /** Mosquitto without the bench's settings (max_inflight_messages, max_queued_messages, set_tcp_nodelay). */
  mosquittoDefaults?: boolean;
}

export interface RunningBroker {
  name: BrokerName;
  pid: number;
  /** MQTT/TCP on 127.0.0.1 (the first gateway's, when there are several). */
  port: number;
  /** MQTT/TCP port of every gateway: [port] for a single-process broker, gateway A's and B's for tributary-kafka. */
  ports: number[];
  /** MQTT over TLS on 127.0.0.1, when the broker was started with certificate files. */
  tlsPort?: number;
  /** The broker's processes (one, or router, retain and the gateways), counted in rssBytes and cpuSeconds. */
  processes: { role: string; pid: number }[];
  /** host:port of each Tributary process's HTTP API (`/status?format=json`); empty for other brokers. */
  statusBinds: string[];
  /** Resident set size summed over the broker's processes, from /proc/<pid>/status. */
  rssBytes(): number;
  /** User + system CPU seconds summed over the broker's processes, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  /** The Kafka broker under tributary-kafka: its own numbers, not counted in the broker's (no pid if external). */
  kafka?: { address: string; pid?: number; rssBytes(): number; cpuSeconds(): number };
  stop(): Promise<void>;
  /** Why the broker process is gone, with its last output lines; undefined while it runs. */
  exitReason(): string | undefined;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/**
 * If the bench dies without cleaning up (kill -9, out of memory), a watchdog it started detached stops what it
 * left behind: once a second it checks the bench's pid; when that is gone it SIGTERMs the pids listed in its file
 * (SIGKILL 5 s later) and removes the listed temp dirs. A clean exit removes the file, and the watchdog just ends.
 * (Ctrl-C and crashes are handled in-process: stopAll, killAllNow; Kafka has its own watchdog, KAFKA_OWNER_PID.)
 */
const WATCHDOG = `owner=$1; list=$2
trap '' HUP INT TERM
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
[ -f "$list" ] || exit 0
pids=$(sed -n 's/^pid //p' "$list")
if [ -n "$pids" ]; then kill -TERM $pids 2>/dev/null; sleep 5; kill -KILL $pids 2>/dev/null; fi
sed -n 's/^dir //p' "$list" | while IFS= read -r d; do
  case "$(basename -- "$d")" in tributary-bench-*) rm -rf -- "$d" ;; esac
done
rm -f -- "$list"`;
let watchList: string | undefined;

/** Rewrites the watchdog's list (live broker pids, temp dirs); starts the watchdog the first time. */
function recordForWatchdog(): void {
  if (!watchList) {
    watchList = path.join(os.tmpdir(), `tributary-bench-${process.pid}.watch`);
    const dog = spawn('bash', ['-c', WATCHDOG, 'watchdog', String(process.pid), watchList], { detached: true, stdio: 'ignore' });
    dog.unref();
  }
  const lines = [...[...live].map((c) => `pid ${c.pid}`), ...[...tempDirs].map((d) => `dir ${d}`)];
  fs.writeFileSync(`${watchList}.tmp`, lines.join('\n') + '\n');
  fs.renameSync(`${watchList}.tmp`, watchList);
}

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
  recordForWatchdog();
  return dir;
}

function readProc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readProc(pid, 'status'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export function cpuOf(pid: number): number {
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
  /** Tributary's HTTP API address. */
  statusBind?: string;
  env?: NodeJS.ProcessEnv;
  /** Temp dirs to remove once the broker has exited. */
  dirs?: string[];
}

async function launch(benchDir: string, repoRoot: string, name: Exclude<BrokerName, 'tributary-kafka'>, port: number, tls?: { port: number; files: TlsFiles }, mosquittoDefaults = false): Promise<Launch> {
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
          ...(mosquittoDefaults
            ? []
            : ['max_connections -1', 'persistence false', `max_inflight_messages ${MOSQUITTO_MAX_INFLIGHT}`, `max_queued_messages ${MOSQUITTO_MAX_QUEUED}`, 'set_tcp_nodelay true']),
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
      const statusBind = await bind();
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
        TRIBUTARY_DASHBOARD__LISTENERS__HTTP__BIND: statusBind,
        TRIBUTARY_NODE__DATA_DIR: dataDir,
        TRIBUTARY_LOG__LEVEL: 'warn',
      };
      // BENCH_TRIBUTARY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the broker under load.
      const nodeArgs = (process.env.BENCH_TRIBUTARY_NODE_ARGS ?? '').split(' ').filter(Boolean);
      return { cmd: process.execPath, args: [...nodeArgs, bin, 'start'], env, dirs: [dataDir], statusBind };
    }
  }
}

const FD_SCRIPT = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;

/** One child process of a broker, with the tail of its output and how it ended. */
interface Proc {
  role: string;
  pid: number;
  /** How it ended ("exited with code 1"); undefined while it runs. */
  exited(): string | undefined;
  /** Its last output lines (errors first). */
  lastWords(): string;
  /** Why it is gone, with its last output lines; undefined while it runs. */
  exitReason(): string | undefined;
  /** SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Spawns through `bash -c 'ulimit -n …; exec …'` so the process gets a high fd limit even when the
 * bench was started from a shell with `ulimit -n 1024`; exec keeps the pid, so /proc/<pid> is the process.
 */
function spawnProc(role: string, repoRoot: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn('bash', ['-c', FD_SCRIPT, 'bash', cmd, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  recordForWatchdog();
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
      recordForWatchdog(); // an exited pid may be reused: it must leave the list at once
      exited = `exited with ${sig ?? `code ${code}`}`;
      resolve();
    });
  });
  return {
    role,
    pid: child.pid ?? 0,
    exited: () => exited,
    lastWords: () => lastLine(tail),
    exitReason: () => (exited ? `${exited}: ${lastLine(tail)}` : undefined),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedP;
      clearTimeout(t);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until ready() holds; fails as soon as the process exits, or after timeoutMs. `who`: "" or "router ". */
async function waitReady(p: Proc, who: string, what: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.exited()) throw new Error(`${who}${p.exited()} before accepting connections: ${p.lastWords()}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} not accepting connections after ${timeoutMs / 1000} s: ${p.lastWords()}`);
    await sleep(50);
  }
}

function removeDirs(dirs: string[]): void {
  for (const d of dirs) {
    fs.rmSync(d, { recursive: true, force: true });
    tempDirs.delete(d);
  }
  recordForWatchdog();
}

export async function startBroker(benchDir: string, repoRoot: string, name: BrokerName, options: StartOptions = {}): Promise<RunningBroker> {
  const tlsFiles = options.tls;
  if (name === 'tributary-kafka') return startTributaryKafka(repoRoot, tlsFiles);
  const port = await freePort();
  const tls = tlsFiles ? { port: await freePort(), files: tlsFiles } : undefined;
  const { cmd, args, env, dirs = [], statusBind } = await launch(benchDir, repoRoot, name, port, tls, options.mosquittoDefaults);
  const proc = spawnProc(name, repoRoot, cmd, args, env ?? process.env);
  const stop = async (): Promise<void> => {
    await proc.stop();
    removeDirs(dirs);
  };
  try {
    await waitReady(proc, '', `port ${port}`, 15_000, async () => (await canConnect(port)) && (!tls || (await canConnect(tls.port))));
  } catch (e) {
    await stop();
    throw e;
  }
  const pid = proc.pid;
  return {
    name,
    pid,
    port,
    ports: [port],
    ...(tls ? { tlsPort: tls.port } : {}),
    processes: [{ role: name, pid }],
    statusBinds: statusBind ? [statusBind] : [],
    rssBytes: () => rssOf(pid),
    cpuSeconds: () => cpuOf(pid),
    stop,
    exitReason: proc.exitReason,
  };
}

// ---------------------------------------------------------------------------------------------
// tributary-kafka: `tributary router`, `tributary retain` and two `tributary gateway`s over one Kafka.

/** The Kafka broker of this bench run: started by deploy/kafka/kafka.sh on first use, or BENCH_KAFKA. */
interface KafkaBroker {
  address: string;
  /** The JVM's pid (undefined for BENCH_KAFKA). */
  pid?: number;
  /** kafka.sh's directory (data, logs, pid file); undefined for BENCH_KAFKA. */
  dir?: string;
}

let kafka: Promise<KafkaBroker> | undefined;
/** Known before kafka.sh starts the JVM, so Ctrl-C during start-up can stop it too. */
let kafkaDir: string | undefined;
let kafkaStarter: ChildProcess | undefined;

function kafkaScript(repoRoot: string): string {
  return path.join(repoRoot, 'deploy/kafka/kafka.sh');
}

/** One Kafka for all tributary-kafka scenarios of a run (topics are fresh per scenario: a new prefix). */
function sharedKafka(repoRoot: string, log: (m: string) => void): Promise<KafkaBroker> {
  kafka ??= (async () => {
    const external = process.env.BENCH_KAFKA;
    if (external) {
      // On this machine its CPU must not count as other processes' noise: find the listener's pid.
      const pid = localListenerPid(external);
      log(`using the Kafka broker at ${external} (BENCH_KAFKA${pid ? `, pid ${pid}` : ''})`);
      return { address: external, ...(pid ? { pid } : {}) };
    }
    const dir = tempDir('kafka');
    kafkaDir = dir;
    log('starting Kafka (deploy/kafka/kafka.sh; the first run downloads it with Maven) ...');
    const t0 = Date.now();
    // KAFKA_OWNER_PID: kafka.sh's watchdog stops the JVM once this process is gone, however it ends.
    const child = spawn('bash', [kafkaScript(repoRoot), 'start', dir], {
      cwd: repoRoot,
      env: { ...process.env, KAFKA_OWNER_PID: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    kafkaStarter = child;
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    kafkaStarter = undefined;
    const address = out.trim().split('\n').pop() ?? '';
    if (code !== 0 || !/^[\w.-]+:\d+$/.test(address)) {
      throw new Error(`Kafka did not start (deploy/kafka/kafka.sh exited with ${code}): ${lastLine(err)}`);
    }
    const pid = Number(fs.readFileSync(path.join(dir, 'kafka.pid'), 'utf8').trim()) || undefined;
    log(`Kafka at ${address} (pid ${pid}), ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { address, ...(pid ? { pid } : {}), dir };
  })();
  // A failed start stays failed for the run (every later scenario gets the same error at once).
  kafka.catch(() => undefined);
  return kafka;
}

/**
 * The pid of the process listening on host:port when host is a loopback address (from /proc/net/tcp{,6}
 * and the socket inodes in /proc/<pid>/fd); undefined if it is elsewhere or not visible to this user.
 */
function localListenerPid(address: string): number | undefined {
  const m = /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?):(\d+)$/.exec(address.split(',')[0]!.trim());
  if (!m) return undefined;
  const port = Number(m[2]).toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileOr(table).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the inode.
      if (f[1]?.endsWith(`:${port}`) && f[3] === '0A' && f[9]) inodes.add(`socket:[${f[9]}]`);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) return Number(pid);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

/** Stops the Kafka broker this run started (nothing for BENCH_KAFKA); the next tributary-kafka start starts a new one. */
export async function stopKafka(): Promise<void> {
  const k = kafka;
  const dir = kafkaDir;
  kafka = undefined;
  kafkaDir = undefined;
  // Still starting (Ctrl-C): end kafka.sh; `stop` below ends the JVM if it was launched already,
  // and kafka.sh's watchdog (KAFKA_OWNER_PID) any JVM launched after that once the bench is gone.
  kafkaStarter?.kill('SIGTERM');
  kafkaStarter = undefined;
  void k?.catch(() => undefined);
  if (!dir) return;
  await new Promise<void>((resolve) => {
    const child = spawn('bash', [kafkaScript(path.resolve(__dirname, '../..')), 'stop', dir], { stdio: 'ignore' });
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  removeDirs([dir]);
}

/** From process.on('exit'): SIGTERM the JVM without waiting (its owner watchdog would otherwise in ≤1 s). */
function killKafkaNow(): void {
  kafkaStarter?.kill('SIGTERM');
  if (!kafkaDir) return;
  for (const f of ['watchdog.pid', 'kafka.pid']) {
    const pid = Number(readFileOr(path.join(kafkaDir, f)).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
}

function readFileOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Best effort, for an external broker (BENCH_KAFKA): delete this scenario's topics and consumer groups. */
async function deleteKafkaTopics(address: string, prefix: string): Promise<void> {
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({ brokers: [address], clientId: 'tributary-bench', logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Node name, and so downlink topic, of each gateway; the bench's clients connect to A (and B). */
export const GATEWAYS = ['gw-a', 'gw-b'] as const;

async function httpOk(bind: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${bind}/status`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Tributary's `messages.dropped*` counters (`/status?format=json`), summed over its processes; undefined for a
 * broker without them or if a process does not answer within 2 s.
 */
export async function droppedCounters(broker: RunningBroker): Promise<Record<string, number> | undefined> {
  if (broker.statusBinds.length === 0) return undefined;
  const sums: Record<string, number> = {};
  try {
    for (const bind of broker.statusBinds) {
      const res = await fetch(`http://${bind}/status?format=json`, { signal: AbortSignal.timeout(2000) });
      const { metrics = {} } = (await res.json()) as { metrics?: Record<string, number> };
      for (const [k, v] of Object.entries(metrics)) if (k.startsWith('messages.dropped')) sums[k] = (sums[k] ?? 0) + v;
    }
  } catch {
    return undefined;
  }
  return sums;
}

let benchLog: (m: string) => void = (m) => void process.stderr.write(`[bench] ${m}\n`);
/** Where start-up progress of Kafka goes (bench.ts passes its logger). */
export function setBrokerLog(log: (m: string) => void): void {
  benchLog = log;
}

/**
 * Kafka (shared by the run), then router, retain and two gateways, each a `node services/cli/bin/tributary.js <role>`
 * configured by environment alone, on topics with a prefix of their own. Each is ready once its /status says 200
 * (and a gateway's MQTT port accepts a connection). Only gateway A gets the TLS listener of a TLS scenario.
 */
async function startTributaryKafka(repoRoot: string, tlsFiles?: TlsFiles): Promise<RunningBroker> {
  const bin = path.join(repoRoot, 'services/cli/bin/tributary.js');
  if (!fs.existsSync(bin)) throw new Error(`${path.relative(repoRoot, bin)} does not exist`);
  const k = await sharedKafka(repoRoot, benchLog);
  const prefix = `bench${process.pid}x${Date.now()}.`;
  const nodeArgs = (process.env.BENCH_TRIBUTARY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const procs: Proc[] = [];
  const dirs: string[] = [];
  const stop = async (): Promise<void> => {
    // Gateways first (they release their sessions), then the services they depend on.
    const gateways = procs.filter((p) => p.role.startsWith('gw-'));
    await Promise.all(gateways.map((p) => p.stop()));
    await Promise.all(procs.filter((p) => !gateways.includes(p)).map((p) => p.stop()));
    removeDirs(dirs);
    if (!k.dir) await deleteKafkaTopics(k.address, prefix).catch(() => undefined);
  };
  const ports: number[] = [];
  const statusBinds: string[] = [];
  let tlsPort: number | undefined;
  try {
    for (const role of ['router', 'retain', ...GATEWAYS]) {
      const gateway = role.startsWith('gw-');
      const dataDir = tempDir(`tributary-kafka-${role}`);
      dirs.push(dataDir);
      const http = `127.0.0.1:${await freePort()}`;
      const port = gateway ? await freePort() : 0;
      const tls = gateway && tlsFiles && role === GATEWAYS[0] ? { port: await freePort(), files: tlsFiles } : undefined;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        TRIBUTARY_BACKBONE__TYPE: 'kafka',
        TRIBUTARY_BACKBONE__KAFKA__BROKERS: k.address,
        TRIBUTARY_BACKBONE__TOPIC_PREFIX: prefix,
        TRIBUTARY_NODE__NAME: role,
        TRIBUTARY_NODE__DATA_DIR: dataDir,
        TRIBUTARY_LOG__LEVEL: 'warn',
        TRIBUTARY_DASHBOARD__LISTENERS__HTTP__BIND: http,
        TRIBUTARY_LISTENERS__WS__DEFAULT__ENABLE: 'false',
        TRIBUTARY_LISTENERS__WSS__DEFAULT__ENABLE: 'false',
        // $SYS messages would be routed through Kafka like any other: keep them out of the measurement.
        TRIBUTARY_SYS_TOPICS__SYS_MSG_INTERVAL: '0',
        TRIBUTARY_SYS_TOPICS__SYS_HEARTBEAT_INTERVAL: '0',
        ...(gateway ? { TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND: `127.0.0.1:${port}` } : {}),
        ...(tls
          ? {
              TRIBUTARY_LISTENERS__SSL__DEFAULT__BIND: `127.0.0.1:${tls.port}`,
              TRIBUTARY_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__CERTFILE: tls.files.cert,
              TRIBUTARY_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__KEYFILE: tls.files.key,
            }
          : { TRIBUTARY_LISTENERS__SSL__DEFAULT__ENABLE: 'false' }),
      };
      const p = spawnProc(role, repoRoot, process.execPath, [...nodeArgs, bin, gateway ? 'gateway' : role], env);
      procs.push(p);
      // Topic creation and consumer-group joins on a fresh prefix take a few seconds.
      await waitReady(p, `${role} `, role, 60_000, async () => (await httpOk(http)) && (!gateway || (await canConnect(port))) && (!tls || (await canConnect(tls.port))));
      if (gateway) ports.push(port);
      statusBinds.push(http);
      if (tls) tlsPort = tls.port;
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const sum = (f: (pid: number) => number): number => procs.reduce((a, p) => a + f(p.pid), 0);
  const kafkaPid = k.pid;
  return {
    name: 'tributary-kafka',
    pid: procs.find((p) => p.role === GATEWAYS[0])!.pid,
    port: ports[0]!,
    ports,
    ...(tlsPort !== undefined ? { tlsPort } : {}),
    processes: procs.map((p) => ({ role: p.role, pid: p.pid })),
    statusBinds,
    rssBytes: () => sum(rssOf),
    cpuSeconds: () => sum(cpuOf),
    kafka: {
      address: k.address,
      ...(kafkaPid ? { pid: kafkaPid } : {}),
      rssBytes: () => (kafkaPid ? rssOf(kafkaPid) : NaN),
      cpuSeconds: () => (kafkaPid ? cpuOf(kafkaPid) : NaN),
    },
    stop,
    exitReason: () => {
      const dead = procs.map((p) => p.exitReason() && `${p.role} ${p.exitReason()}`).filter(Boolean);
      if (kafkaPid && !fs.existsSync(`/proc/${kafkaPid}`)) dead.push(`Kafka (pid ${kafkaPid}) is gone`);
      return dead.length > 0 ? dead.join('; ') : undefined;
    },
  };
}

/** The broker's last words: error lines if there are any (warnings come first in logs), else the last lines. */
function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim());
  const errors = lines.filter((l) => /error|fatal|"level":\s*[56]0/i.test(l));
  const pick = (errors.length > 0 ? errors : lines).slice(-2).map((l) => l.trim().slice(0, 200));
  return pick.join(' | ') || '(no output)';
}

/** On Ctrl-C or a fatal error: SIGTERM every broker still running, SIGKILL after 5 s, stop Kafka, remove temp dirs. */
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
  await stopKafka();
  removeTempDirs();
}

/** Last resort from process.on('exit'), where nothing asynchronous runs: SIGTERM whatever is left. */
export function killAllNow(): void {
  for (const child of live) child.kill('SIGTERM');
  killKafkaNow();
  removeTempDirs();
}

export function removeTempDirs(): void {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  // Nothing left for the watchdog (it ends with the bench); a later start writes a new list.
  if (watchList) fs.rmSync(watchList, { force: true });
}
