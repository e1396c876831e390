/**
 * npm run bench — Mosquitto, Aedes and Tributary (embedded, and scaled out over Kafka) under the same load,
 * one after another, with ratios to Mosquitto.
 * Flags: --quick, --only <broker,...>, --scenarios <name|family,...>, --duration <s>, --retries <n>, --kafka-warmup <s>, --drain <s>.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BROKERS, BrokerName, MOSQUITTO_DEFAULTS, MOSQUITTO_MAX_INFLIGHT, MOSQUITTO_MAX_QUEUED, RunningBroker, StartOptions, benchTlsFiles, findMosquitto, killAllNow, startBroker, stopAll } from './brokers';
import { Ctx, Metric, Prepared, RunOptions, Scenario, ScenarioResult } from './harness';
import { OPENLOOP_SCENARIOS } from './openloop';
import { RULES_SCENARIOS } from './rules';
import { SECURITY_SCENARIOS } from './security';
import { API_SCENARIOS } from './api';
import { FD_LIMIT, rssOf } from './processes';
import { SCENARIOS as CLOSED_LOOP_SCENARIOS } from './scenarios';
import { setBrokerLog, stopKafka } from './tributary-kafka';

const SCENARIOS: Scenario[] = [...CLOSED_LOOP_SCENARIOS, ...OPENLOOP_SCENARIOS, ...SECURITY_SCENARIOS, ...API_SCENARIOS, ...RULES_SCENARIOS];
/** Names --scenarios accepts: every scenario's, and each family's (all of its scenarios). */
const FAMILIES = [...new Set(SCENARIOS.map((s) => s.family).filter((f): f is string => f !== undefined))];

const BENCH_DIR = __dirname; // bench/dist
const REPO_ROOT = path.resolve(__dirname, '../..');
const RESULTS = path.join(REPO_ROOT, 'bench/results/latest.json');

interface Args {
  quick: boolean;
  only: BrokerName[];
  scenarios: Scenario[];
  durationS: number;
  warmupS: number;
  retries: number;
  /** Seconds of unmeasured load through tributary-kafka before its first scenario (Kafka's JIT). */
  kafkaWarmupS: number;
  /** Open-loop scenarios: most seconds to wait for deliveries after the load (undefined: each scenario's own). */
  drainMaxS?: number;
}

function fail(msg: string): never {
  console.error(`[bench] ${msg}`);
  process.exit(2);
}

/**
 * A freshly started Kafka JVM is slow until its JIT has compiled the hot paths: under cross-qos1 it used
 * 0.7-0.9 of a core in a measurement right after its start and 0.3 after a minute of load, and the msg/s
 * it allowed rose by half.
 */
const KAFKA_WARMUP_S = 60;
const KAFKA_WARMUP_SCENARIO = 'cross-qos1';

function parseArgs(argv: string[]): Args {
  let quick = false;
  let only: BrokerName[] = [...BROKERS];
  let scenarios = SCENARIOS;
  let duration: number | undefined;
  let retries = 2;
  let kafkaWarmup: number | undefined;
  let drainMaxS: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => argv[++i] ?? fail(`${a} needs a value`);
    if (a === '--quick') quick = true;
    else if (a === '--only') {
      only = value().split(',').map((b) => (BROKERS as readonly string[]).includes(b) ? (b as BrokerName) : fail(`unknown broker ${b} (${BROKERS.join(', ')})`));
    } else if (a === '--scenarios') {
      const names = value().split(',');
      for (const n of names) if (!SCENARIOS.some((s) => s.name === n) && !FAMILIES.includes(n)) fail(`unknown scenario ${n} (${[...SCENARIOS.map((s) => s.name), ...FAMILIES].join(', ')})`);
      scenarios = SCENARIOS.filter((s) => names.includes(s.name) || (s.family !== undefined && names.includes(s.family)));
    } else if (a === '--duration') {
      duration = Number(value());
      if (!(duration > 0)) fail('--duration needs a positive number of seconds');
    } else if (a === '--retries') {
      retries = Number(value());
      if (!Number.isInteger(retries) || retries < 0) fail('--retries needs a whole number');
    } else if (a === '--kafka-warmup') {
      kafkaWarmup = Number(value());
      if (!(kafkaWarmup >= 0)) fail('--kafka-warmup needs a number of seconds (0: none)');
    } else if (a === '--drain') {
      drainMaxS = Number(value());
      if (!(drainMaxS > 0)) fail('--drain needs a positive number of seconds');
    } else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--only ${BROKERS.join(',')}] [--scenarios a,b] [--duration s] [--retries n] [--kafka-warmup s] [--drain s]`);
      console.log(`scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`);
      console.log(`families (all of their scenarios): ${FAMILIES.join(', ')}`);
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  const durationS = duration ?? (quick ? 1 : 5);
  return {
    quick,
    only,
    scenarios,
    durationS,
    warmupS: quick ? 0.5 : Math.min(1, durationS),
    retries,
    kafkaWarmupS: kafkaWarmup ?? (quick ? 10 : KAFKA_WARMUP_S),
    ...(drainMaxS !== undefined ? { drainMaxS } : {}),
  };
}

/**
 * The load process needs 10k+ sockets, but the shell may have `ulimit -n 1024` (soft and hard).
 * Re-run this script under `bash -c 'ulimit -n 65536; exec node …'`; root (with CAP_SYS_RESOURCE) may raise both limits.
 */
function reexecWithFdLimit(): void {
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  const child = spawn('bash', ['-c', script, 'bash', process.execPath, ...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    // Not TRIBUTARY_*: Tributary reads every such variable as configuration.
    env: { ...process.env, BENCH_FD_LIMIT_RAISED: '1' },
  });
  // Ctrl-C reaches the whole process group; the child cleans up, this wrapper only waits for it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 130 : 1)));
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? '').trim();
  }
}

function machine(withKafka: boolean): Record<string, string | number> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const mosq = findMosquitto();
  const aedesPkg = path.join(REPO_ROOT, 'node_modules/aedes/package.json');
  return {
    cores: os.availableParallelism(),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown',
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    mosquitto: mosq ? (sh(mosq, ['-h']).split('\n')[0] ?? 'unknown') : 'not installed',
    aedes: fs.existsSync(aedesPkg) ? (JSON.parse(fs.readFileSync(aedesPkg, 'utf8')) as { version: string }).version : 'not installed',
    fdLimit: Number(sh('bash', ['-c', 'ulimit -n'])),
    // What was measured; Tributary's numbers only mean something next to the commit they came from.
    commit: sh('git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty']) || 'unknown',
    ...(withKafka
      ? {
          kafka: process.env.BENCH_KAFKA ? `external at ${process.env.BENCH_KAFKA} (BENCH_KAFKA)` : `Apache Kafka ${process.env.KAFKA_VERSION ?? '4.4.0'}, single KRaft node by deploy/kafka/kafka.sh`,
          java: javaVersion(),
        }
      : {}),
  };
}

/** `java -version` writes to stderr. */
function javaVersion(): string {
  return spawnSync('java', ['-version'], { encoding: 'utf8' }).stderr?.split('\n')[0]?.trim() || 'unknown';
}

type Outcome = { ok: true; result: ScenarioResult } | { ok: false; error: string };

function withTimeout<T>(p: Promise<T>, seconds: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => (onTimeout(), reject(new Error(`timed out after ${seconds} s`))), seconds * 1000);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const log = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

/** Above this many cores used by other processes a measurement is retried, and flagged if it stays so. */
const NOISE_LIMIT = 0.25;
const noise = (o: Outcome): number => (o.ok ? (o.result.extra.otherCpuCores ?? 0) : Infinity);

async function attempt(name: BrokerName, s: Scenario, opts: RunOptions): Promise<Outcome | undefined> {
  let broker: RunningBroker | undefined;
  let prepared: Prepared | undefined;
  try {
    if (s.prepare) {
      prepared = await s.prepare(name);
      if (!prepared) return undefined; // no equivalent on this broker: skipped
    }
    // A fresh broker per scenario: no queues, sessions or heap growth carried from one load into the next.
    const start: StartOptions = {
      ...(s.tls ? { tls: await benchTlsFiles() } : {}),
      ...(s.mosquittoDefaults ? { mosquittoDefaults: true } : {}),
      ...(prepared?.env ? { env: prepared.env } : {}),
      ...(prepared?.mosquittoConf ? { mosquittoConf: prepared.mosquittoConf } : {}),
    };
    broker = await startBroker(BENCH_DIR, REPO_ROOT, name, start);
    const defaults = s.mosquittoDefaults && name === 'mosquitto' ? ` (${MOSQUITTO_DEFAULTS})` : '';
    log(`${s.title} on ${name}${defaults}: ${s.timed ? `${opts.warmupS} s warm-up + ${opts.durationS} s` : 'connecting'} ...`);
    // A scenario in two phases gets a fresh broker for the second.
    const restart = async (): Promise<RunningBroker> => {
      const old = broker;
      broker = undefined;
      await old?.stop();
      broker = await startBroker(BENCH_DIR, REPO_ROOT, name, start);
      return broker;
    };
    const ctx = new Ctx(broker, { ...opts, log }, restart);
    const result = await withTimeout(s.run(ctx), s.timeoutS(opts), () => ctx.abort());
    const died = broker.exitReason();
    if (died) throw new Error(`broker ${died}`);
    result.extra.brokerRssAfterBytes = broker.rssBytes();
    if (broker.processes.length > 1) for (const p of broker.processes) result.extra[`rssAfterBytes.${p.role}`] = rssOf(p.pid);
    const kafkaRss = broker.kafka?.rssBytes();
    if (kafkaRss !== undefined && Number.isFinite(kafkaRss)) result.extra.kafkaRssAfterBytes = kafkaRss;
    return { ok: true, result };
  } catch (e) {
    // "no messages received" is a symptom; a broker that died meanwhile is the cause.
    const died = broker?.exitReason();
    const error = died ? `broker ${died}` : (e as Error).message;
    log(`${s.title} on ${name}: failed: ${error}`);
    return { ok: false, error };
  } finally {
    await broker?.stop();
    await prepared?.cleanup?.();
  }
}

/** Unmeasured load through a tributary-kafka cluster, so that Kafka's JVM is warm for the measurements. */
async function warmKafka(seconds: number, opts: RunOptions): Promise<void> {
  const s = SCENARIOS.find((x) => x.name === KAFKA_WARMUP_SCENARIO)!;
  log(`warming up Kafka (not measured; --kafka-warmup 0 skips this):`);
  const o = await attempt('tributary-kafka', s, { ...opts, warmupS: 0, durationS: seconds });
  if (o?.ok) log(`  warm-up: ${Math.round(o.result.extra.receivedPerS ?? 0)} msg/s, Kafka used ${(o.result.extra.kafkaCpuCores ?? NaN).toFixed(2)} cores`);
}

/** On a shared machine other processes steal CPU from broker and load: retry, keep the quietest run. */
async function runOne(name: BrokerName, s: Scenario, opts: RunOptions, retries: number): Promise<Outcome | undefined> {
  let best: Outcome | undefined;
  for (let i = 0; i <= retries; i++) {
    const o = await attempt(name, s, opts);
    if (!o) return undefined; // the scenario does not apply to this broker
    if (!best || noise(o) < noise(best)) best = o;
    if (!o.ok || noise(o) <= NOISE_LIMIT) break;
    log(`  other processes used ${noise(o).toFixed(2)} cores meanwhile${i < retries ? ': retrying' : ''}`);
  }
  if (best?.ok && noise(best) > NOISE_LIMIT) {
    const note = `noisy: ${noise(best).toFixed(1)} cores used by others`;
    for (const m of best.result.metrics) m.note = [m.note, note].filter(Boolean).join(', ');
  }
  return best!;
}

/** s's first metric over its baseline's on broker b (Scenario.baseline), when both were measured. */
function vsBaseline(outcomes: Map<string, Outcome>, b: BrokerName, s: Scenario): number | undefined {
  const first = (name: string): number | undefined => {
    const o = outcomes.get(`${b}/${name}`);
    return o?.ok ? o.result.metrics[0]?.value : undefined;
  };
  const x = s.baseline !== undefined ? first(s.name) : undefined;
  const base = s.baseline !== undefined ? first(s.baseline) : undefined;
  return x !== undefined && base ? x / base : undefined;
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * Rows: one per metric; a column per broker run, then each one's ratio to Mosquitto (Tributary's first).
 * A broker that failed a scenario shows "failed: <reason>" in its cell.
 */
function table(args: Args, outcomes: Map<string, Outcome>): string {
  const brokers = BROKERS.filter((b) => args.only.includes(b));
  const ratioOrder: BrokerName[] = ['tributary', 'tributary-kafka', 'aedes'];
  const ratios = args.only.includes('mosquitto') ? ratioOrder.filter((b) => args.only.includes(b)) : [];
  const header = ['metric', ...brokers, ...ratios.map((b) => `${b}/mosquitto`)];
  const rows: string[][] = [];
  for (const s of args.scenarios) {
    const metrics = new Map<string, Metric>();
    for (const b of brokers) {
      const o = outcomes.get(`${b}/${s.name}`);
      if (o?.ok) for (const m of o.result.metrics) if (!metrics.has(m.key)) metrics.set(m.key, m);
    }
    const measured = metrics.size > 0;
    if (!measured) metrics.set(s.name, { key: s.name, label: s.title, value: NaN, better: 'higher', digits: 0 });
    for (const m of metrics.values()) {
      const metric = (b: BrokerName): Metric | undefined => {
        const o = outcomes.get(`${b}/${s.name}`);
        return o?.ok ? o.result.metrics.find((x) => x.key === m.key) : undefined;
      };
      const value = (b: BrokerName): number | undefined => metric(b)?.value;
      const cell = (b: BrokerName): string => {
        const o = outcomes.get(`${b}/${s.name}`);
        if (!o) return 'skipped';
        if (!o.ok) return `failed: ${o.error.length > 40 ? `${o.error.slice(0, 39)}…` : o.error}`;
        const note = metric(b)?.note;
        return fmt(value(b), m.digits) + (note ? ` (${note})` : '');
      };
      const ratio = (b: BrokerName): string => {
        const x = value(b);
        const base = value('mosquitto');
        return x !== undefined && base ? `${fmt(x / base, 2)}x` : '-';
      };
      const arrow = !measured ? '' : m.better === 'higher' ? ' (higher is better)' : ' (lower is better)';
      rows.push([`${m.label}${arrow}`, ...brokers.map(cell), ...ratios.map(ratio)]);
    }
    if (s.baseline !== undefined && args.scenarios.some((x) => x.name === s.baseline)) {
      const cell = (b: BrokerName): string => (outcomes.has(`${b}/${s.name}`) ? fmt(vsBaseline(outcomes, b, s), 2) : 'skipped');
      rows.push([`${s.name} / ${s.baseline} (higher is better)`, ...brokers.map(cell), ...ratios.map(() => '-')]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ');
  // Full failure reasons once each, since the cells cut them short.
  const failures = new Set<string>();
  for (const [key, o] of outcomes) if (!o.ok) failures.add(`${key.split('/')[0]}: ${o.error}`);
  const footer = failures.size > 0 ? ['', 'failures:', ...[...failures].map((f) => `  ${f}`)] : [];
  const withDefaults = args.scenarios.filter((s) => s.mosquittoDefaults).map((s) => s.name);
  if (withDefaults.length > 0 && brokers.includes('mosquitto')) footer.push('', `mosquitto in ${withDefaults.join(', ')}: its defaults (${MOSQUITTO_DEFAULTS.replace('Mosquitto defaults: ', '')}); in the other rows the bench's settings`);
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line), ...footer].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.only.includes('mosquitto') && !findMosquitto()) {
    fail('mosquitto is not installed (looked in /usr/sbin, /usr/local/sbin and PATH). Install the Debian package "mosquitto": apt-get install -y mosquitto');
  }
  const interrupted = (sig: string) => async (): Promise<void> => {
    log(`${sig}: stopping brokers`);
    await stopAll();
    process.exit(130);
  };
  process.on('SIGINT', interrupted('SIGINT'));
  process.on('SIGTERM', interrupted('SIGTERM'));
  // A crash (e.g. EPIPE after `| head`) must not orphan brokers either.
  process.on('uncaughtException', (e) => {
    process.exitCode = 1;
    void stopAll().finally(() => (console.error(e), process.exit(1)));
  });
  process.on('exit', killAllNow);

  setBrokerLog(log);
  const opts: RunOptions = {
    warmupS: args.warmupS,
    durationS: args.durationS,
    fdLimit: Number(sh('bash', ['-c', 'ulimit -n'])),
    ...(args.drainMaxS !== undefined ? { drainMaxS: args.drainMaxS } : {}),
    log,
  };
  const started = new Date();
  const outcomes = new Map<string, Outcome>();
  const failedToStart = new Map<BrokerName, string>();
  for (const b of BROKERS.filter((x) => args.only.includes(x))) {
    if (b === 'tributary-kafka' && args.kafkaWarmupS > 0) await warmKafka(args.kafkaWarmupS, opts);
    for (const s of args.scenarios) {
      const earlier = failedToStart.get(b);
      // A broker that cannot start once will not start for the next scenario either; do not wait 15 s again.
      const o = earlier ? { ok: false as const, error: earlier } : await runOne(b, s, opts, args.retries);
      if (!o) continue; // skipped: no equivalent on this broker
      if (!o.ok && /before accepting|not accepting|does not exist|not found|did not start/.test(o.error)) failedToStart.set(b, o.error);
      outcomes.set(`${b}/${s.name}`, o);
    }
    // tributary-kafka's Kafka broker lives across its scenarios; it must not idle on the CPU beside the next broker.
    await stopKafka();
  }
  await stopAll();

  const text = table(args, outcomes);
  console.log(text);
  const results: Record<string, Record<string, unknown>> = {};
  for (const [key, o] of outcomes) {
    const [b, s] = key.split('/') as [BrokerName, string];
    const ratio = vsBaseline(outcomes, b, SCENARIOS.find((x) => x.name === s)!);
    (results[b] ??= {})[s] = o.ok ? { metrics: Object.fromEntries(o.result.metrics.map((m) => [m.key, m.value])), extra: o.result.extra, ...(ratio !== undefined ? { vsBaseline: ratio } : {}) } : { error: o.error };
  }
  const json = {
    date: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    options: {
      quick: args.quick,
      warmupS: args.warmupS,
      durationS: args.durationS,
      retries: args.retries,
      ...(args.only.includes('tributary-kafka') ? { kafkaWarmupS: args.kafkaWarmupS } : {}),
      ...(args.drainMaxS !== undefined ? { drainMaxS: args.drainMaxS } : {}),
      brokers: args.only,
      scenarios: args.scenarios.map((s) => s.name),
    },
    mosquittoConfig: {
      max_inflight_messages: MOSQUITTO_MAX_INFLIGHT,
      max_queued_messages: MOSQUITTO_MAX_QUEUED,
      withItsDefaults: { scenarios: args.scenarios.filter((s) => s.mosquittoDefaults).map((s) => s.name), settings: MOSQUITTO_DEFAULTS },
    },
    // Settings passed to every Tributary process from the environment (e.g. TRIBUTARY_BACKBONE__KAFKA__LINGER_MS).
    tributaryEnv: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('TRIBUTARY_'))),
    machine: machine(args.only.includes('tributary-kafka')),
    results,
    table: text,
  };
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.writeFileSync(RESULTS, JSON.stringify(json, null, 2) + '\n');
  log(`done in ${Math.round(json.seconds)} s; results in ${path.relative(process.cwd(), RESULTS)}`);
}

if (process.env.BENCH_FD_LIMIT_RAISED !== '1') reexecWithFdLimit();
else
  main().catch(async (e: unknown) => {
    console.error(e);
    await stopAll();
    process.exit(1);
  });
