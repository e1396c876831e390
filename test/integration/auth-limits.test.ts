import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { IClientOptions, MqttClient } from 'mqtt';
import pino from 'pino';
import { loadTributaryConfig, TributaryNode } from '@tributary/cli';

/**
 * Bans, flapping detection, rate limits and overload protection against a real broker: a
 * TributaryNode in this process (so the test can add bans to it and read its counters), real
 * sockets, mqtt.js clients.
 */

interface Running {
  node: TributaryNode;
  url: string;
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

const running = new Set<Running>();
after(async () => {
  for (const r of running) await r.stop();
});

async function startNode(overrides: Record<string, unknown> = {}): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-limits-'));
  const { config } = loadTributaryConfig({
    env: {},
    overrides: {
      'node.data_dir': dataDir,
      'listeners.tcp.default.bind': '127.0.0.1:0',
      'listeners.ssl.default.enable': false,
      'listeners.ws.default.enable': false,
      'listeners.wss.default.enable': false,
      'dashboard.listeners.http.enable': false,
      ...overrides,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const node = new TributaryNode(config, log, 'all');
  await node.start();
  const r: Running = {
    node,
    logs,
    url: `mqtt://127.0.0.1:${node.gateway!.listeners[0]!.port}`,
    async stop() {
      running.delete(r);
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(r);
  return r;
}

/** What a CONNECT got: 0 (connected; the client is closed again unless kept), a refusal code, or 'closed' without CONNACK. */
function connack(url: string, opts: IClientOptions, keep?: (c: MqttClient) => void): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    let done = false;
    const finish = (rc: number | 'closed'): void => {
      if (done) return;
      done = true;
      if (rc === 0 && keep) keep(c);
      else c.end(true);
      resolve(rc);
    };
    c.once('connect', () => finish(0));
    c.once('error', (err: Error & { code?: unknown }) => finish(typeof err.code === 'number' ? err.code : 'closed'));
    c.once('close', () => finish('closed'));
  });
}

function connected(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    void connack(url, opts, resolve).then((rc) => rc !== 0 && reject(new Error(`CONNECT refused: ${rc}`)));
  });
}

const v5 = (clientId: string, extra: IClientOptions = {}): IClientOptions => ({ protocolVersion: 5, clientId, ...extra });
const v311 = (clientId: string, extra: IClientOptions = {}): IClientOptions => ({ protocolVersion: 4, clientId, ...extra });

describe('bans', () => {
  it('refuse a banned client id (v5 0x8A, 3.1.1 code 5), a username regex and a CIDR block; an expired ban is not enforced', async () => {
    const b = await startNode();
    const bans = b.node.limits!.bans;
    await bans.add({ as: 'clientid', who: 'banned-1', reason: 'test' });
    assert.equal(await connack(b.url, v5('banned-1')), 0x8a);
    assert.equal(await connack(b.url, v311('banned-1')), 5);
    assert.equal(await connack(b.url, v5('free-1')), 0);

    await bans.add({ as: 'username_re', who: '^bad-' });
    assert.equal(await connack(b.url, v5('u1', { username: 'bad-guy' })), 0x8a);
    assert.equal(await connack(b.url, v5('u2', { username: 'good-guy' })), 0);

    await bans.add({ as: 'clientid', who: 'expired', until: Math.floor(Date.now() / 1000) - 10 });
    assert.equal(await connack(b.url, v5('expired')), 0);

    await bans.add({ as: 'peerhost_net', who: '127.0.0.0/8' });
    assert.equal(await connack(b.url, v5('anyone')), 0x8a);
    assert.equal(await bans.delete('peerhost_net', '127.0.0.0/8'), true);
    assert.equal(await connack(b.url, v5('anyone')), 0);

    assert.equal(b.node.metrics()['client.banned'], 4);
    assert.equal(b.logs.filter((l) => l.msg === 'banned client refused (logged once per ban)' && l.who === 'banned-1').length, 1, 'logged once per ban');
    await b.stop();
  });

  it('disconnect a connected client at once when a ban matching it is added (DISCONNECT 0x98: 0x8A is CONNACK-only)', async () => {
    const b = await startNode();
    const victim = await connected(b.url, v5('victim', { username: 'vic' }));
    const bystander = await connected(b.url, v5('bystander'));
    const gone = new Promise<number | undefined>((resolve) => victim.once('disconnect', (p) => resolve(p.reasonCode)));
    await b.node.limits!.bans.add({ as: 'username', who: 'vic' });
    assert.equal(await gone, 0x98);
    assert.equal(bystander.connected, true);
    assert.equal(b.node.metrics()['client.banned.disconnected'], 1);
    // And it cannot come back.
    assert.equal(await connack(b.url, v5('victim', { username: 'vic' })), 0x8a);
    victim.end(true);
    bystander.end(true);
    await b.stop();
  });
});

describe('flapping detection', () => {
  it('bans a client id that connects more than max_count times within the window', async () => {
    const b = await startNode({ 'flapping_detect.enable': true, 'flapping_detect.max_count': 3, 'flapping_detect.window_time': '1m', 'flapping_detect.ban_time': '5m' });
    for (let i = 0; i < 3; i++) assert.equal(await connack(b.url, v5('flappy')), 0, `connect ${i + 1}`);
    assert.equal(await connack(b.url, v5('flappy')), 0x8a);
    assert.equal(await connack(b.url, v311('flappy')), 5);
    assert.equal(await connack(b.url, v5('steady')), 0);
    const ban = b.node.limits!.bans.get('clientid', 'flappy');
    assert.equal(ban?.by, 'flapping_detect');
    assert.equal(b.node.metrics()['client.flapping'], 1);
    assert.equal(b.logs.filter((l) => l.msg === 'flapping client banned').length, 1);
    await b.stop();
  });
});

describe('rate limits', () => {
  it('max_conn_rate: a burst beyond the rate is refused, a slower rate is accepted', async () => {
    const b = await startNode({ 'listeners.tcp.default.max_conn_rate': '5/s' });
    const burst = await Promise.all(Array.from({ length: 15 }, (_, i) => connack(b.url, v5(`burst-${i}`))));
    const accepted = burst.filter((rc) => rc === 0).length;
    const refused = burst.filter((rc) => rc === 'closed').length;
    assert.equal(accepted + refused, 15, `only CONNACK 0 or a closed socket: ${JSON.stringify(burst)}`);
    assert.ok(accepted >= 5 && accepted <= 8, `accepted ${accepted} of a burst of 15 at 5/s`);
    assert.equal(b.node.metrics()['listener.conn_rate_limited'], refused);
    assert.equal(b.logs.filter((l) => l.msg === 'max_conn_rate exceeded: closing new connections').length, 1, 'one log line per episode');
    // Slower than the rate (one per 400 ms at 5/s), after the bucket refilled: every one is accepted.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    for (let i = 0; i < 4; i++) {
      assert.equal(await connack(b.url, v5(`slow-${i}`)), 0);
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    assert.equal(b.node.metrics()['listener.conn_rate_limited'], refused);
    await b.stop();
  });

  /** Publishes `n` QoS 1 messages as fast as it may and resolves when the subscriber got them all; returns the time it took. */
  async function flood(url: string, n: number, payload: (i: number) => string): Promise<number> {
    const sub = await connected(url, v5('sink'));
    await sub.subscribeAsync('flood/#', { qos: 1 });
    const seen = new Set<string>();
    const all = new Promise<void>((resolve) =>
      sub.on('message', (_t, p) => {
        seen.add(p.toString().slice(0, 12));
        if (seen.size === n) resolve();
      }),
    );
    const pub = await connected(url, v5('flooder'));
    const started = Date.now();
    // As fast as the broker's Receive Maximum allows (mqtt.js does not keep to it itself): 10 unacknowledged at a time.
    let next = 0;
    const send = (): void => {
      if (next >= n) return;
      pub.publish('flood/x', payload(next++), { qos: 1 }, send);
    };
    for (let i = 0; i < 10; i++) send();
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`only ${seen.size} of ${n} delivered`)), 30_000).unref());
    await Promise.race([all, timeout]);
    const took = Date.now() - started;
    assert.equal(seen.size, n, 'every message delivered, none dropped');
    pub.end(true);
    sub.end(true);
    return took;
  }

  it('messages_rate: a flooding publisher is paused, not dropped; every message arrives at about the rate', async () => {
    const b = await startNode({ 'listeners.tcp.default.messages_rate': '50/s' });
    const took = await flood(b.url, 150, (i) => `m-${String(i).padStart(10, '0')}`);
    // A burst of 50, then 100 more at 50/s: at least about 2 s (a lower bound only: a slow machine takes longer).
    assert.ok(took >= 1500, `150 messages at 50/s took ${took} ms`);
    assert.ok(b.node.metrics()['client.rate_limited']! >= 1, 'the socket was paused');
    assert.equal(b.node.metrics()['messages.dropped.queue_full'], 0, JSON.stringify(b.node.metrics()));
    await b.stop();
  });

  it('bytes_rate: a publisher sending more bytes than the rate is paused, every message arrives', async () => {
    const b = await startNode({ 'listeners.tcp.default.bytes_rate': '16KB/s' });
    const took = await flood(b.url, 48, (i) => `b-${String(i).padStart(10, '0')}`.padEnd(1000, '.'));
    // 48 KB: a burst of 16 KB, then 32 KB at 16 KB/s.
    assert.ok(took >= 1500, `48 KB at 16KB/s took ${took} ms`);
    assert.ok(b.node.metrics()['client.rate_limited']! >= 1, 'the socket was paused');
    await b.stop();
  });
});

describe('overload protection', () => {
  it('refuses new CONNECTs with 0x97 (3.1.1: 3) while the heap is over max_heap', async () => {
    const b = await startNode({ 'overload_protection.enable': true, 'overload_protection.max_heap': '1B' });
    assert.equal(await connack(b.url, v5('busy-1')), 0x97);
    assert.equal(await connack(b.url, v311('busy-2')), 3);
    assert.equal(b.node.metrics()['overload.refused'], 2);
    assert.equal(b.logs.filter((l) => l.msg === 'overloaded: refusing new connections').length, 1);
    await b.stop();
  });

  it('is off by default', async () => {
    const b = await startNode({ 'overload_protection.max_heap': '1B' });
    assert.equal(await connack(b.url, v5('calm')), 0);
    await b.stop();
  });
});
