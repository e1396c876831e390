/**
 * node bench/dist/kafka-clients.js — the Kafka clients the backbone could use, side by side, on one Kafka broker
 * (started with deploy/kafka/kafka.sh, or TRIBUTARY_TEST_KAFKA / BENCH_KAFKA), at equal durability: acks=all and
 * an idempotent producer. Each client runs in a child process of its own (its CPU is then its own) through the
 * same three phases: produce N records the way the backbone does (one request per event-loop turn, a bounded
 * number in flight), consume them back in a consumer group from earliest with a commit after every handled batch,
 * and a round trip at a fixed rate (produce call → consumer receipt). The main number is CPU µs per record
 * (process.cpuUsage, user + system), which other load on the machine barely moves. See docs/benchmarks.md.
 *
 * Flags: --records N, --size B, --rounds R, --clients a,b, --rate R, --seconds S, --partitions P, --inflight K,
 * --max-batch M, --warmup N, --modules DIR,... (where to find clients not installed in the repo), --json FILE.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuOf } from './processes';
import { sharedKafka, stopKafka } from './tributary-kafka';
import { type Adapter, CLIENTS, type ClientConfig, type ClientName, confluentAdapter, kafkajsAdapter, type OutRecord, PACKAGES, platformaticAdapter, REPO_ROOT } from './kafka-client-adapters';


interface ClientSpec {
  /** The entry as given on the command line: names the client's runs. */
  id: string;
  name: ClientName;
  modules: string[];
}

interface Args {
  records: number;
  size: number;
  rounds: number;
  /** Each as given: `name` or `name=dir,...` (where that client's package is installed, searched after the repo). */
  clients: ClientSpec[];
  rate: number;
  seconds: number;
  partitions: number;
  inflight: number;
  maxBatch: number;
  maxBatchBytes: number;
  warmup: number;
  modules: string[];
  json: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    records: 200_000,
    size: 100,
    rounds: 3,
    clients: CLIENTS.map((name) => ({ id: name, name, modules: [] })),
    rate: 5_000,
    seconds: 5,
    partitions: 1,
    inflight: 1,
    maxBatch: 500,
    maxBatchBytes: 1024 * 1024,
    warmup: 50_000,
    modules: [],
    json: path.join(REPO_ROOT, 'bench/results/kafka-clients.json'),
  };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const v = argv[i + 1];
    i++;
    switch (flag) {
      case '--records': a.records = num(flag, v, 1); break;
      case '--size': a.size = num(flag, v, 8); break;
      case '--rounds': a.rounds = num(flag, v, 1); break;
      case '--rate': a.rate = num(flag, v, 1); break;
      case '--seconds': a.seconds = num(flag, v, 1); break;
      case '--partitions': a.partitions = num(flag, v, 1); break;
      case '--inflight': a.inflight = num(flag, v, 1); break;
      case '--max-batch': a.maxBatch = num(flag, v, 1); break;
      case '--max-batch-bytes': a.maxBatchBytes = num(flag, v, 1024); break;
      case '--warmup': a.warmup = num(flag, v, 0); break;
      case '--modules': a.modules = (v ?? '').split(',').filter(Boolean).map((d) => path.resolve(d)); break;
      case '--json': a.json = path.resolve(v ?? ''); break;
      case '--clients': {
        // kafkajs,platformatic=/tmp/pk1/node_modules,platformatic=/tmp/pk2/node_modules: one client twice, two versions.
        const specs = (v ?? '').split(/,(?=[a-z]+(?:=|,|$))/).filter(Boolean);
        a.clients = specs.map((id) => {
          const [name = '', dirs = ''] = id.split('=');
          if (!(CLIENTS as readonly string[]).includes(name)) throw new Error(`--clients: unknown client ${JSON.stringify(name)} (known: ${CLIENTS.join(', ')})`);
          return { id, name: name as ClientName, modules: dirs.split(',').filter(Boolean).map((d) => path.resolve(d)) };
        });
        if (a.clients.length === 0) throw new Error(`--clients takes a list of ${CLIENTS.join(', ')}`);
        break;
      }
      default:
        throw new Error(`unknown flag ${flag} (flags: --records --size --rounds --clients --rate --seconds --partitions --inflight --max-batch --max-batch-bytes --warmup --modules --json)`);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------------------
// The child: one client through the three phases.

interface PhaseResult {
  records: number;
  seconds: number;
  recordsPerS: number;
  cpuUsPerRecord: number;
  /** Produce requests sent, or batches handed to the consumer's handler. */
  batches?: number;
  /** The Kafka JVM's CPU over the phase, per record (when its pid is known). */
  kafkaCpuUsPerRecord?: number;
}

interface LatencyResult extends PhaseResult {
  sent: number;
  received: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface ChildResult {
  client: ClientName;
  version: string;
  produce: PhaseResult;
  consume: PhaseResult;
  latency: LatencyResult;
}

/** What a child runs: the load settings of the command line, for one client on one Kafka. */
interface ChildArgs extends Pick<Args, 'records' | 'size' | 'rate' | 'seconds' | 'partitions' | 'inflight' | 'maxBatch' | 'maxBatchBytes' | 'modules'> {
  client: ClientName;
  brokers: string[];
  prefix: string;
  kafkaPid: number | undefined;
}

/** 1,000 MQTT-topic-like keys, so records spread like a fleet's telemetry. */
const KEYS = Array.from({ length: 1000 }, (_, i) => `devices/site-${i % 17}/sensor-${i}/telemetry`);
const HEADERS = { 'tributary-schema': 'io.tributary.v1.Message' };
const RECORD_OVERHEAD = 24;

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * The backbone's append pattern: records queue up; once per event-loop turn what is queued becomes one request
 * (up to maxBatchBytes), at most `inflight` requests at a time; what arrives meanwhile waits for the next one.
 */
class TurnBatcher {
  private queue: OutRecord[] = [];
  private waiters: Array<() => void> = [];
  private inFlight = 0;
  private scheduled = false;
  private failed: Error | undefined;
  acked = 0;
  requests = 0;

  constructor(
    private readonly adapter: Adapter,
    private readonly topic: string,
    private readonly inflight: number,
    private readonly maxBatchBytes: number,
    private readonly onAck: (records: OutRecord[]) => void = () => undefined,
  ) {}

  add(r: OutRecord): void {
    this.queue.push(r);
    this.schedule();
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.inflight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.inflight && this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length) {
        const r = this.queue[n]!;
        const b = RECORD_OVERHEAD + r.value.length + r.key.length + 40;
        if (n > 0 && bytes + b > this.maxBatchBytes) break;
        bytes += b;
        n++;
      }
      const batch = this.queue.splice(0, n);
      this.inFlight++;
      this.requests++;
      this.adapter.send(this.topic, batch).then(
        () => {
          this.inFlight--;
          this.acked += batch.length;
          this.onAck(batch);
          this.after();
        },
        (err: unknown) => {
          this.inFlight--;
          this.failed = err instanceof Error ? err : new Error(String(err));
          console.error(`[kafka-clients] send failed: ${this.failed.message}`);
          this.after();
        },
      );
    }
  }

  private after(): void {
    if (this.queue.length > 0) this.schedule();
    else if (this.inFlight === 0) for (const w of this.waiters.splice(0)) w();
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runChild(a: ChildArgs): Promise<ChildResult> {
  const cfg: ClientConfig = { brokers: a.brokers, fetchWaitMs: 100, sessionTimeoutMs: 30_000, heartbeatIntervalMs: 1000, maxBytesPerPartition: 1024 * 1024 };
  let adapter: Adapter;
  try {
    adapter = a.client === 'kafkajs' ? await kafkajsAdapter(cfg) : a.client === 'platformatic' ? await platformaticAdapter(cfg, a.modules) : await confluentAdapter(cfg, a.modules);
  } catch (err) {
    throw new Error(`${PACKAGES[a.client]} not usable (install it, or name its node_modules with --modules / --clients ${a.client}=DIR): ${(err as Error).message}`);
  }
  const kafkaCpu = (): number => (a.kafkaPid ? cpuOf(a.kafkaPid) * 1e6 : NaN);
  const phase = (records: number, seconds: number, cpu: number, kcpu: number): PhaseResult => ({
    records,
    seconds,
    recordsPerS: records / seconds,
    cpuUsPerRecord: cpu / records,
    ...(a.kafkaPid ? { kafkaCpuUsPerRecord: kcpu / records } : {}),
  });
  const log = (m: string): void => void process.stderr.write(`[kafka-clients] ${a.client}: ${m}\n`);
  await adapter.connect();
  log('connected');
  const topic = `${a.prefix}load`;
  const latencyTopic = `${a.prefix}latency`;
  await adapter.createTopic(topic, a.partitions);
  await adapter.createTopic(latencyTopic, a.partitions);
  log('topics created');

  // (a) produce: every record available at once; batches form per turn, bounded by maxBatchBytes and inflight.
  const value = Buffer.alloc(a.size, 0x61);
  let produce: PhaseResult;
  {
    const batcher = new TurnBatcher(adapter, topic, a.inflight, a.maxBatchBytes);
    const c0 = cpuUs();
    const k0 = kafkaCpu();
    const t0 = performance.now();
    // Fed a chunk per turn so the source itself is never a giant array (and looks like arriving traffic).
    let made = 0;
    await new Promise<void>((resolve, reject) => {
      const feed = (): void => {
        const until = Math.min(a.records, made + 20_000);
        while (made < until) {
          batcher.add({ key: KEYS[made % KEYS.length]!, value, headers: HEADERS });
          made++;
        }
        if (made < a.records) {
          // Keep at most a few requests' worth queued, like an MQTT gateway under backpressure.
          const wait = (): void => void (batcher.queued > 40_000 ? setTimeout(wait, 1) : setImmediate(feed));
          wait();
        } else batcher.idle().then(resolve, reject);
      };
      feed();
    });
    const t1 = performance.now();
    produce = { ...phase(a.records, (t1 - t0) / 1000, cpuUs() - c0, kafkaCpu() - k0), batches: batcher.requests };
    log(`produced ${a.records} in ${batcher.requests} requests, ${Math.round(produce.recordsPerS)}/s, ${produce.cpuUsPerRecord.toFixed(2)} µs CPU/record`);
  }

  // (b) consume from earliest in a fresh group, a commit after every handled chunk of maxBatch records.
  let consume: PhaseResult;
  {
    const c0 = cpuUs();
    const k0 = kafkaCpu();
    const t0 = performance.now();
    let got = 0;
    let bytes = 0;
    let batches = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const consumer = await adapter.consume(topic, `${a.prefix}group`, async (records, commit) => {
      batches++;
      for (let i = 0; i < records.length; i += a.maxBatch) {
        const chunk = records.slice(i, i + a.maxBatch);
        for (const r of chunk) bytes += r.value?.length ?? 0;
        got += chunk.length;
        await commit(chunk[0]!.partition, chunk[chunk.length - 1]!.offset + 1);
        if (got >= a.records) done();
      }
    });
    await finished;
    const t1 = performance.now();
    consume = { ...phase(got, (t1 - t0) / 1000, cpuUs() - c0, kafkaCpu() - k0), batches };
    if (bytes !== got * a.size) throw new Error(`consumed ${bytes} value bytes for ${got} records of ${a.size}`);
    log(`consumed ${got} in ${batches} batches, ${Math.round(consume.recordsPerS)}/s, ${consume.cpuUsPerRecord.toFixed(2)} µs CPU/record`);
    await consumer.stop();
  }

  // (c) round trip at a fixed rate: produce call → receipt by a group consumer of the same process.
  let latency: LatencyResult;
  {
    const total = a.rate * a.seconds;
    const sentAt = new Float64Array(total + 1);
    const lat = new Float64Array(total);
    let received = 0;
    let probeSeen!: () => void;
    const probe = new Promise<void>((resolve) => (probeSeen = resolve));
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const consumer = await adapter.consume(latencyTopic, `${a.prefix}latency`, async (records, commit) => {
      const now = performance.now();
      for (const r of records) {
        const seq = r.value!.readUInt32BE(0);
        if (seq === 0xffffffff) {
          probeSeen();
          continue;
        }
        lat[received++] = now - sentAt[seq]!;
      }
      await commit(records[0]!.partition, records[records.length - 1]!.offset + 1);
      if (received >= total) done();
    });
    // The consumer has joined and fetches once it received a probe record.
    const batcher = new TurnBatcher(adapter, latencyTopic, a.inflight, a.maxBatchBytes);
    const probeValue = Buffer.alloc(a.size);
    probeValue.writeUInt32BE(0xffffffff, 0);
    batcher.add({ key: KEYS[0]!, value: probeValue, headers: HEADERS });
    await probe;
    const c0 = cpuUs();
    const k0 = kafkaCpu();
    const t0 = performance.now();
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        const due = Math.min(total, Math.floor(((now - t0) / 1000) * a.rate));
        while (sent < due) {
          const v = Buffer.allocUnsafe(a.size);
          v.fill(0x61, 4);
          v.writeUInt32BE(sent, 0);
          sentAt[sent] = performance.now();
          batcher.add({ key: KEYS[sent % KEYS.length]!, value: v, headers: HEADERS });
          sent++;
        }
        if (sent < total) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 15_000).unref());
    await Promise.race([finished, timeout]);
    const t1 = performance.now();
    const c1 = cpuUs();
    const k1 = kafkaCpu();
    const sorted = lat.slice(0, received).sort();
    latency = {
      ...phase(received, (t1 - t0) / 1000, c1 - c0, k1 - k0),
      sent,
      received,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
    };
    log(`round trip at ${a.rate}/s: ${received}/${sent} received, p50 ${latency.p50Ms.toFixed(1)} ms, p99 ${latency.p99Ms.toFixed(1)} ms`);
    await consumer.stop();
  }
  await adapter.close();
  return { client: a.client, version: adapter.version, produce, consume, latency };
}

// ---------------------------------------------------------------------------------------------------------------
// The parent: Kafka, then the clients interleaved round by round, medians at the end.

interface RunResult {
  round: number;
  client: string;
  ok: boolean;
  error?: string;
  result?: ChildResult;
  loadavg: number[];
}

function childRun(client: ClientSpec, args: Args, brokers: string, prefix: string, kafkaPid: number | undefined, records: number, seconds: number): Promise<ChildResult> {
  const childArgs: ChildArgs = {
    client: client.name,
    brokers: brokers.split(','),
    prefix,
    records,
    size: args.size,
    rate: args.rate,
    seconds,
    partitions: args.partitions,
    inflight: args.inflight,
    maxBatch: args.maxBatch,
    maxBatchBytes: args.maxBatchBytes,
    kafkaPid,
    modules: [...client.modules, ...args.modules],
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--child', JSON.stringify(childArgs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as ChildResult);
      else reject(new Error(`${client.id} child exited with ${code ?? sig}: ${line.slice(0, 500)}`));
    });
  });
}

function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';

function table(args: Args, runs: RunResult[]): string {
  const rows = [
    '| client | produce rec/s | produce CPU µs/rec | consume rec/s | consume CPU µs/rec | round trip p50 / p99 ms | round trip CPU µs/rec | Kafka JVM CPU µs/rec (produce / consume / round trip) | runs |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const client of args.clients) {
    const ok = runs.filter((r) => r.client === client.id && r.ok && r.result).map((r) => r.result!);
    const failed = runs.filter((r) => r.client === client.id && !r.ok);
    if (ok.length === 0) {
      rows.push(`| ${client.id} | failed: ${(failed[0]?.error ?? 'not run').replace(/\|/g, '/').slice(0, 200)} | | | | | | | 0 |`);
      continue;
    }
    const m = (f: (r: ChildResult) => number): number => median(ok.map(f));
    rows.push(
      `| ${ok[0]!.version} | ${fmt(m((r) => r.produce.recordsPerS))} | ${fmt(m((r) => r.produce.cpuUsPerRecord), 2)} | ${fmt(m((r) => r.consume.recordsPerS))} | ${fmt(m((r) => r.consume.cpuUsPerRecord), 2)} | ${fmt(m((r) => r.latency.p50Ms), 1)} / ${fmt(m((r) => r.latency.p99Ms), 1)} | ${fmt(m((r) => r.latency.cpuUsPerRecord), 1)} | ${fmt(m((r) => r.produce.kafkaCpuUsPerRecord ?? NaN), 1)} / ${fmt(m((r) => r.consume.kafkaCpuUsPerRecord ?? NaN), 1)} / ${fmt(m((r) => r.latency.kafkaCpuUsPerRecord ?? NaN), 0)} | ${ok.length}${failed.length ? ` (+${failed.length} failed)` : ''} |`,
    );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (m: string): void => void process.stderr.write(`[kafka-clients] ${m}\n`);
  const external = process.env.TRIBUTARY_TEST_KAFKA ?? process.env.BENCH_KAFKA;
  if (external) process.env.BENCH_KAFKA = external;
  process.on('SIGINT', () => void stopKafka().finally(() => process.exit(130)));
  const kafka = await sharedKafka(REPO_ROOT, log);
  const runs: RunResult[] = [];
  const stamp = `kc${process.pid}x${Date.now()}`;
  try {
    if (args.warmup > 0) {
      log(`warm-up (Kafka's JIT): ${args.warmup} records through each client, not measured`);
      for (const client of args.clients) {
        await childRun(client, args, kafka.address, `${stamp}.w${args.clients.indexOf(client)}.`, kafka.pid, args.warmup, 1).catch((err: Error) => log(`warm-up: ${err.message}`));
      }
    }
    for (let round = 1; round <= args.rounds; round++) {
      // Interleaved, and rotated each round, so no client always follows the same one.
      const order = args.clients.map((_, i) => args.clients[(i + round - 1) % args.clients.length]!);
      for (const client of order) {
        const loadavg = os.loadavg();
        log(`round ${round}/${args.rounds}: ${client.id} (load ${loadavg.map((l) => l.toFixed(2)).join(' ')})`);
        try {
          const result = await childRun(client, args, kafka.address, `${stamp}.${round}.${args.clients.indexOf(client)}.`, kafka.pid, args.records, args.seconds);
          runs.push({ round, client: client.id, ok: true, result, loadavg });
        } catch (err) {
          log((err as Error).message);
          runs.push({ round, client: client.id, ok: false, error: (err as Error).message, loadavg });
        }
      }
    }
  } finally {
    if (!external) await stopKafka();
  }
  const out = {
    when: new Date().toISOString(),
    args: { ...args, json: undefined },
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavgAtEnd: os.loadavg() },
    kafka: external ? `external at ${external}` : `deploy/kafka/kafka.sh (${process.env.KAFKA_VERSION ?? '4.4.0'})`,
    runs,
  };
  fs.mkdirSync(path.dirname(args.json), { recursive: true });
  fs.writeFileSync(args.json, JSON.stringify(out, null, 2) + '\n');
  console.log(`${args.records.toLocaleString('en-US')} records × ${args.size} B, ${args.partitions} partition(s), ${args.inflight} request(s) in flight; round trip at ${args.rate}/s for ${args.seconds} s; medians of ${args.rounds} round(s)\n`);
  console.log(table(args, runs));
  log(`all runs in ${path.relative(process.cwd(), args.json)}`);
}

if (process.argv[2] === '--child') {
  runChild(JSON.parse(process.argv[3]!) as ChildArgs).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (err: unknown) => {
      const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stdout.write(`failed: ${text.replace(/\s*\n\s*/g, ' | ')}\n`);
      process.exit(1);
    },
  );
} else {
  main().catch((err: unknown) => {
    console.error(`[kafka-clients] ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
