/**
 * What a scenario is and what it is given: the run options, a context that owns its connections (and can
 * restart its broker), the rows it returns, and the stamped payload every scenario's messages carry.
 */
import { performance } from 'node:perf_hooks';
import type { RunningBroker } from './brokers';
import { Conn, PublishTemplate } from './mqtt-wire';

export interface RunOptions {
  warmupS: number;
  durationS: number;
  /** Open-file limit this process (and, started the same way, each broker) ended up with. */
  fdLimit: number;
  /** Open-loop scenarios: most seconds to wait for deliveries once the load stops (--drain; default per scenario). */
  drainMaxS?: number;
  log(msg: string): void;
}

export interface Metric {
  key: string;
  label: string;
  value: number;
  better: 'higher' | 'lower';
  /** Digits after the decimal point in the table. */
  digits: number;
  /** Shown next to the value, e.g. messages a broker dropped. */
  note?: string;
}

export interface ScenarioResult {
  metrics: Metric[];
  /** Diagnostics for the JSON file: CPU use, losses, achieved rates. */
  extra: Record<string, number>;
}

/** Every connection a scenario opens, so a timed-out scenario can be torn down from outside. */
export class Ctx {
  readonly conns: Conn[] = [];
  aborted = false;
  /** restarter: stops the broker and starts a fresh one of the same kind (bench.ts owns both). */
  constructor(
    public broker: RunningBroker,
    readonly opts: RunOptions,
    private readonly restarter?: () => Promise<RunningBroker>,
  ) {}

  /** Closes every connection and replaces the broker by a fresh one, for a second phase of a scenario. */
  async restart(): Promise<void> {
    if (!this.restarter) throw new Error('this harness cannot restart the broker');
    this.closeAll();
    this.broker = await this.restarter();
    if (this.aborted) throw new Error('scenario aborted');
  }

  /**
   * useTls: connect to the broker's TLS listener (the scenario must have `tls: true`). gateway: which of the
   * broker's MQTT ports (0 = A, 1 = B; a single-process broker has one, which every index maps to).
   */
  open(localAddress?: string, useTls = false, gateway = 0): Conn {
    if (this.aborted) throw new Error('scenario aborted');
    if (useTls && this.broker.tlsPort === undefined) throw new Error('broker was started without a TLS listener');
    const ports = this.broker.ports;
    const c = useTls ? new Conn(this.broker.tlsPort!, localAddress, true) : new Conn(ports[gateway % ports.length]!, localAddress);
    this.conns.push(c);
    return c;
  }

  closeAll(): void {
    for (const c of this.conns) c.close();
    this.conns.length = 0;
  }

  abort(): void {
    this.aborted = true;
    for (const c of this.conns) c.socket.destroy();
    this.conns.length = 0;
  }
}

/** What a scenario needs from one broker's start: extra environment (Tributary) or configuration lines (Mosquitto). */
export interface Prepared {
  env?: Record<string, string>;
  mosquittoConf?: string[];
  /** After the broker stopped (e.g. a database the scenario started). */
  cleanup?(): Promise<void>;
}

export interface Scenario {
  name: string;
  title: string;
  /** Hard limit for one run, warm-up and measurement included. */
  timeoutS(opts: RunOptions): number;
  /** Has a warm-up and a measured duration (the connections scenario has neither). */
  timed: boolean;
  /** The broker needs a TLS listener (with the run's self-signed certificate). */
  tls?: boolean;
  /** Mosquitto runs with its own defaults, not the bench's settings (MOSQUITTO_DEFAULTS). */
  mosquittoDefaults?: boolean;
  /** A name that selects this scenario together with the rest of its family (`--scenarios openloop`). */
  family?: string;
  /**
   * The scenario (same run, same broker) this one's first metric is divided by, in a row `<name> / <baseline>`
   * of the table and as `vsBaseline` in the JSON: what a feature costs against the same load without it.
   */
  baseline?: string;
  /** Called before each broker's start; undefined: this broker has no equivalent and skips the scenario. */
  prepare?(broker: import('./brokers').BrokerName): Promise<Prepared | undefined>;
  run(ctx: Ctx): Promise<ScenarioResult>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Payload: float64 send time (performance.now(), ms), u32 publisher index, u32 sequence; padded to 64 bytes. */
export const PAYLOAD_BYTES = 64;

/**
 * n PUBLISHes of publisher p in one buffer: packet ids (QoS 1) continue from nextId[p], the payload gets the send
 * time, p and sequence numbers from firstSeq.
 */
export function stampBatch(tpl: PublishTemplate, n: number, p: number, firstSeq: number, nextId: Uint16Array): Buffer {
  const buf = tpl.batch(n);
  const len = tpl.packet.length;
  const now = performance.now();
  for (let i = 0, off = 0; i < n; i++, off += len) {
    if (tpl.idOffset >= 0) buf.writeUInt16BE((nextId[p] = (nextId[p]! % 65535) + 1), off + tpl.idOffset);
    const po = off + tpl.payloadOffset;
    buf.writeDoubleLE(now, po);
    buf.writeUInt32LE(p, po + 8);
    buf.writeUInt32LE(firstSeq + i, po + 12);
  }
  return buf;
}

/**
 * The JSON payload (Flow.json): `{"x":1,"s":"<hex>"}`, fixed width, where the 32 hex digits are the same 16 stamp
 * bytes as the binary payload's (send time, publisher, sequence). For brokers that decode the payload (rules).
 */
const JSON_HEAD = '{"x":1,"s":"';
export const JSON_PAYLOAD = Buffer.from(`${JSON_HEAD}${'0'.repeat(32)}"}`);
const JSON_STAMP_AT = JSON_HEAD.length;
const STAMP_KEY = Buffer.from('"s":"');
const STAMP_NAME = Buffer.from('"s"');
const HEX = Buffer.from('0123456789abcdef');
/** Hex digit value by character code (either case), -1 for anything else. */
const UNHEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) UNHEX['0123456789abcdef'.charCodeAt(i)] = UNHEX['0123456789ABCDEF'.charCodeAt(i)] = i;
const OUT_STAMP = Buffer.alloc(16);
const IN_STAMP = Buffer.alloc(16);

/** stampBatch for a template whose payload is JSON_PAYLOAD: the same stamp, written as hex digits. */
export function stampBatchJson(tpl: PublishTemplate, n: number, p: number, firstSeq: number, nextId: Uint16Array): Buffer {
  const buf = tpl.batch(n);
  const len = tpl.packet.length;
  OUT_STAMP.writeDoubleLE(performance.now(), 0);
  OUT_STAMP.writeUInt32LE(p, 8);
  for (let i = 0, off = 0; i < n; i++, off += len) {
    if (tpl.idOffset >= 0) buf.writeUInt16BE((nextId[p] = (nextId[p]! % 65535) + 1), off + tpl.idOffset);
    OUT_STAMP.writeUInt32LE(firstSeq + i, 12);
    let o = off + tpl.payloadOffset + JSON_STAMP_AT;
    for (let k = 0; k < 16; k++) {
      const b = OUT_STAMP[k]!;
      buf[o++] = HEX[b >> 4]!;
      buf[o++] = HEX[b & 15]!;
    }
  }
  return buf;
}

/**
 * The 16 stamp bytes of a JSON payload at buf[off, off + len), decoded into a shared buffer (valid until the next
 * call), or undefined without a stamp. The fixed place first; a payload re-encoded on the way (spaces, other key
 * order) is searched.
 */
export function jsonStamp(buf: Buffer, off: number, len: number): Buffer | undefined {
  let at = off + JSON_STAMP_AT;
  const end = off + len;
  if (len < JSON_PAYLOAD.length || buf.compare(STAMP_KEY, 0, STAMP_KEY.length, at - STAMP_KEY.length, at) !== 0) {
    const k = buf.subarray(off, end).indexOf(STAMP_NAME);
    if (k < 0) return undefined;
    at = off + k + STAMP_NAME.length;
    // `"s"`, then `:` and `"` with any white space around.
    for (const want of [0x3a, 0x22]) {
      while (at < end && (buf[at] === 0x20 || buf[at] === 0x0a || buf[at] === 0x0d || buf[at] === 0x09)) at++;
      if (buf[at++] !== want) return undefined;
    }
  }
  if (at + 32 > end) return undefined;
  for (let k = 0; k < 16; k++) {
    const hi = UNHEX[buf[at + 2 * k]!]!;
    const lo = UNHEX[buf[at + 2 * k + 1]!]!;
    if (hi < 0 || lo < 0) return undefined;
    IN_STAMP[k] = (hi << 4) | lo;
  }
  return IN_STAMP;
}
