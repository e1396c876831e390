/**
 * tributary-kafka: `tributary router`, `tributary retain` and two `tributary gateway`s over one Kafka broker,
 * which the run starts once (deploy/kafka/kafka.sh) or finds at BENCH_KAFKA.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunningBroker, TlsFiles } from './brokers';
import { Proc, canConnect, cpuOf, freePort, lastLine, removeDirs, rssOf, spawnProc, tempDir, tributaryNodeArgs, waitReady } from './processes';

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
export function sharedKafka(repoRoot: string, log: (m: string) => void): Promise<KafkaBroker> {
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
export function killKafkaNow(): void {
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
export async function startTributaryKafka(repoRoot: string, tlsFiles?: TlsFiles): Promise<RunningBroker> {
  const bin = path.join(repoRoot, 'services/cli/bin/tributary.js');
  if (!fs.existsSync(bin)) throw new Error(`${path.relative(repoRoot, bin)} does not exist`);
  const k = await sharedKafka(repoRoot, benchLog);
  const prefix = `bench${process.pid}x${Date.now()}.`;
  const nodeArgs = tributaryNodeArgs(repoRoot);
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
