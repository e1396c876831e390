/**
 * Starting, probing and stopping the brokers under test, each as its own child process (Tributary
 * scaled out over Kafka: four processes, plus the Kafka broker they share, in tributary-kafka.ts; the
 * process plumbing both use is in processes.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate } from 'selfsigned';
import { canConnect, cpuOf, freePort, removeDirs, removeTempDirs, rssOf, spawnProc, killChildrenNow, stopChildren, tempDir, tributaryNodeArgs, waitReady } from './processes';
import { killKafkaNow, startTributaryKafka, stopKafka } from './tributary-kafka';

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
  /** A scenario's additions (security.ts): Tributary's environment, Mosquitto's configuration lines. */
  env?: Record<string, string>;
  mosquittoConf?: string[];
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

export function findMosquitto(): string | undefined {
  const dirs = ['/usr/sbin', '/usr/local/sbin', ...(process.env.PATH ?? '').split(':')];
  return dirs.map((d) => path.join(d, 'mosquitto')).find((p) => fs.existsSync(p));
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

async function launch(benchDir: string, repoRoot: string, name: Exclude<BrokerName, 'tributary-kafka'>, port: number, tls: { port: number; files: TlsFiles } | undefined, options: StartOptions): Promise<Launch> {
  const mosquittoDefaults = options.mosquittoDefaults === true;
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
          ...(options.mosquittoConf ?? ['allow_anonymous true']),
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
        ...options.env,
      };
      return { cmd: process.execPath, args: [...tributaryNodeArgs(repoRoot), bin, 'start'], env, dirs: [dataDir], statusBind };
    }
  }
}

export async function startBroker(benchDir: string, repoRoot: string, name: BrokerName, options: StartOptions = {}): Promise<RunningBroker> {
  const tlsFiles = options.tls;
  if (name === 'tributary-kafka') return startTributaryKafka(repoRoot, tlsFiles);
  const port = await freePort();
  const tls = tlsFiles ? { port: await freePort(), files: tlsFiles } : undefined;
  const { cmd, args, env, dirs = [], statusBind } = await launch(benchDir, repoRoot, name, port, tls, options);
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

/** On Ctrl-C or a fatal error: SIGTERM every broker still running, SIGKILL after 5 s, stop Kafka, remove temp dirs. */
export async function stopAll(): Promise<void> {
  await stopChildren();
  await stopKafka();
  removeTempDirs();
}

/** Last resort from process.on('exit'), where nothing asynchronous runs: SIGTERM whatever is left. */
export function killAllNow(): void {
  killChildrenNow();
  killKafkaNow();
  removeTempDirs();
}
