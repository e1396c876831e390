import mqtt, { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import type { BrokerProcess } from './broker';
import { afterEach } from 'node:test';
import { end, Inbox, Received } from './clients';
import type { RawClient } from './raw';

/** `/status?format=json`: stats (gauges) and metrics (counters). */
export interface BrokerStatus {
  status: string;
  stats: Record<string, number>;
  metrics: Record<string, number>;
}

export async function brokerStatus(b: BrokerProcess): Promise<BrokerStatus> {
  const res = await fetch(`http://127.0.0.1:${b.httpPort}/status?format=json`);
  return (await res.json()) as BrokerStatus;
}

/** One metrics counter (0 when absent). */
export async function metric(b: BrokerProcess, name: string): Promise<number> {
  return (await brokerStatus(b)).metrics[name] ?? 0;
}

/** Polls `check` every 20 ms until it returns true; rejects after timeoutMs. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Waits until the broker counts exactly `n` open MQTT connections (metric connections.count). */
export function connectionsSettle(b: BrokerProcess, n: number): Promise<void> {
  return waitUntil(async () => (await metric(b, 'connections.count')) === n, `${n} open connections`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the first `event` emitted (its first argument); rejects after timeoutMs. */
/** Anything with once/off (Node emitters, mqtt.js's typed client, ws). */
export interface Emitter {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: any, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: any, listener: (...args: any[]) => void): unknown;
}

export function once<T = unknown>(emitter: Emitter, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out waiting for '${event}'`));
    }, timeoutMs);
    const on = (arg: T): void => {
      clearTimeout(t);
      resolve(arg);
    };
    emitter.once(event, on);
  });
}

export interface Opened {
  client: MqttClient;
  /** Attached before CONNECT is sent, so messages that follow CONNACK at once are not missed. */
  inbox: Inbox;
  connack: IConnackPacket;
}

/** Like clients.connect, but also returns the CONNACK and an Inbox that sees every message. */
export async function open(url: string, opts: IClientOptions = {}): Promise<Opened> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  const inbox = new Inbox(client);
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', (p) => resolve(p));
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  }).catch((err: unknown) => {
    // A client that never connected is closed here: nothing else holds it to end it.
    client.on('error', () => undefined);
    client.end(true);
    throw err;
  });
  return { client, inbox, connack };
}

/** Topics unique to one test run, so tests never see each other's traffic. */
let seq = 0;
export function uniqueTopic(prefix: string): string {
  return `${prefix}/${process.pid}-${++seq}`;
}

/** Waits until the inbox holds a message matching `pred` (whatever else arrived before it). */
export async function waitForMessage(inbox: Inbox, pred: (m: Received) => boolean, what: string, timeoutMs = 10_000): Promise<Received> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = inbox.messages.find(pred);
    if (found) return found;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no message ${what}; got ${inbox.messages.map((m) => `${m.topic}:${m.payload.toString()}`).join(', ') || 'nothing'}`);
    await inbox.waitFor(inbox.messages.length + 1, left).catch(() => undefined);
  }
}

export function waitForTopic(inbox: Inbox, topic: string, timeoutMs?: number): Promise<Received> {
  return waitForMessage(inbox, (m) => m.topic === topic, `on ${topic}`, timeoutMs);
}

export function waitForPayload(inbox: Inbox, payload: string, timeoutMs?: number): Promise<Received> {
  return waitForMessage(inbox, (m) => m.payload.toString() === payload, `"${payload}"`, timeoutMs);
}

/**
 * The mqtt.js and raw clients a test file opens, all closed after each test. `url` is read at
 * connect time, so a file may restart its broker.
 */
export function clientTracker(url: () => string): { client(opts?: IClientOptions): Promise<Opened>; clients: MqttClient[]; raws: RawClient[] } {
  const clients: MqttClient[] = [];
  const raws: RawClient[] = [];
  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await end(...clients.splice(0));
  });
  return {
    clients,
    raws,
    async client(opts: IClientOptions = {}): Promise<Opened> {
      const o = await open(url(), opts);
      clients.push(o.client);
      return o;
    },
  };
}

export const payloads = (msgs: Received[]): string[] => msgs.map((m) => m.payload.toString());
