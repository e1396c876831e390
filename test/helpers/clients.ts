import mqtt, { IClientOptions, MqttClient } from 'mqtt';

/** Connects an mqtt.js client and waits for CONNACK. reconnectPeriod 0: tests decide when to reconnect. */
export async function connect(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqtt.IPublishPacket;
}

/** Collects messages and lets a test wait for the n-th one. */
export class Inbox {
  readonly messages: Received[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, packet });
      this.waiters = this.waiters.filter((w) => (this.messages.length >= w.n ? (w.resolve(), false) : true));
    });
  }

  /** Resolves when at least n messages arrived; rejects after timeoutMs (default 10 s). */
  waitFor(n: number, timeoutMs = 10_000): Promise<Received[]> {
    if (this.messages.length >= n) return Promise.resolve(this.messages);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${n} messages, got ${this.messages.length}`)), timeoutMs);
      this.waiters.push({ n, resolve: () => (clearTimeout(t), resolve(this.messages)) });
    });
  }
}

export async function end(...clients: (MqttClient | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => (c && c.connected ? c.endAsync() : c?.end(true))));
}

/** Waits until the client's connection closes (e.g. the broker disconnected it). */
export function closed(client: MqttClient): Promise<unknown> {
  return client.connected ? new Promise((resolve) => client.once('close', () => resolve(undefined))) : Promise.resolve();
}

/**
 * The CONNACK reason code a client gets: 0 when accepted, the refusal's code otherwise (mqtt.js
 * reports a refused CONNACK as an error with `code`). Rejects on any other error or a close
 * without CONNACK; the client is ended either way.
 */
export async function connackCode(url: string, opts: IClientOptions = {}): Promise<number> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  try {
    return await new Promise<number>((resolve, reject) => {
      c.once('connect', () => resolve(0));
      c.once('error', (err: Error & { code?: unknown }) => (typeof err.code === 'number' ? resolve(err.code) : reject(err)));
      c.once('close', () => reject(new Error('closed without a CONNACK')));
    });
  } finally {
    await c.endAsync(true);
  }
}
