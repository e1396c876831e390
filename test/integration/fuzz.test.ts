// Fuzzing the real broker process over TCP: valid packets of every type (3.1.1 and 5.0, with
// properties) generated with mqtt-packet, then mutated (bit flips, truncation, random length
// bytes, concatenation, splicing, random garbage), sent over many short-lived connections, some
// after a valid CONNECT and some without. Afterwards the broker must still be alive, answer
// /status with 200, never have logged an internal error, and serve a fresh client.
//
// Deterministic: FUZZ_SEED=<n> repeats a run (the seed is printed); FUZZ_CONNECTIONS and
// FUZZ_PACKETS change the amount. Every one of the connections runs (no time budget cuts the
// run short); the test's timeout bounds how long that may take.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { encode, mutate, prng, Rand } from '../helpers/packet-gen';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2024) >>> 0;
const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 2000);
const PACKETS_PER_CONNECTION = Number(process.env.FUZZ_PACKETS ?? 50);
const PARALLEL = 24;

interface ConnStats {
  bytes: number;
  packets: number;
  closedByBroker: boolean;
  connacked: boolean;
}

/** One short-lived connection: maybe a valid CONNECT, then `n` valid or mutated packets in random chunks. */
function fuzzConnection(port: number, r: Rand, n: number): Promise<ConnStats> {
  const v = r.pick([4, 4, 5, 5, 5, 3] as const);
  const chunks: Buffer[] = [];
  const withConnect = r.chance(0.75);
  if (withConnect) chunks.push(encode(r, v, 'connect'));
  // Chaotic connections are closed after a packet or two; mostly-valid ones get deep into the
  // session logic (subscriptions, in-flight windows, QoS 2 state) before something goes wrong.
  const mostlyValid = r.chance(0.5);
  const mutationRate = mostlyValid ? r.pick([0, 0.01, 0.03, 0.1]) : r.pick([0.3, 0.65, 1]);
  const CLIENT_TYPES: mp.PacketCmd[] = ['publish', 'publish', 'publish', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'subscribe', 'unsubscribe', 'pingreq'];
  for (let i = 0; i < n; i++) {
    const pv = mostlyValid || r.chance(0.9) ? v : r.pick([3, 4, 5] as const);
    const type = mostlyValid ? (r.chance(0.01) ? r.pick<mp.PacketCmd>(['disconnect', 'connect', 'auth', 'connack']) : r.pick(CLIENT_TYPES)) : undefined;
    const valid = encode(r, pv, type);
    chunks.push(r.chance(mutationRate) ? mutate(r, valid, () => encode(r, pv)) : valid);
  }
  // Write in a few random batches; byte boundaries are random too.
  const all = Buffer.concat(chunks);
  const writes: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const len = r.chance(0.3) ? r.range(1, 8) : r.range(16, 600);
    writes.push(all.subarray(at, at + len));
    at += len;
  }
  const stats: ConnStats = { bytes: all.length, packets: n, closedByBroker: false, connacked: false };
  return new Promise((resolve) => {
    const s: Socket = netConnect(port, '127.0.0.1');
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(linger);
      s.destroy();
      resolve(stats);
    };
    // Wait at most this long for the broker to react after the last write, then hang up.
    let linger = setTimeout(finish, 5000);
    let pinged = false;
    let tail = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      if (!stats.connacked && tail.length === 0 && d[0] === 0x20) stats.connacked = true;
      tail = Buffer.concat([tail, d]).subarray(-2);
      // The PINGRESP to our final PINGREQ: the broker has processed everything we sent.
      if (pinged && tail[0] === 0xd0 && tail[1] === 0x00) finish();
    });
    s.on('error', () => undefined);
    s.on('end', () => (stats.closedByBroker = true));
    s.on('close', finish);
    s.on('connect', () => {
      let i = 0;
      const step = (): void => {
        if (done) return;
        if (i >= writes.length) {
          // A final PINGREQ: if the connection survived, its PINGRESP ends the wait early.
          s.write(Buffer.from([0xc0, 0x00]));
          pinged = true;
          clearTimeout(linger);
          linger = setTimeout(finish, 1500);
          return;
        }
        s.write(writes[i++]!);
        // Mostly back to back, sometimes a pause so packets arrive in separate reads.
        if (r.chance(0.1)) setTimeout(step, 1);
        else step();
      };
      step();
    });
  });
}

let broker: BrokerProcess;
let watcher: MqttClient | undefined;

before(async () => {
  // Info level so the log does not fill with per-connection debug lines; errors are what we check.
  broker = await startBroker({ env: { TRIBUTARY_MQTT__IDLE_TIMEOUT: '2s' } });
});

after(async () => {
  await end(watcher);
  await broker?.stop();
});

test(`fuzz: ${CONNECTIONS} connections × ${PACKETS_PER_CONNECTION} random and mutated packets`, { timeout: 90_000 }, async (t) => {
  t.diagnostic(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} repeats this run)`);
  // A well-behaved client connected throughout must be unaffected.
  watcher = await connect(broker.url, { protocolVersion: 5, clientId: 'fuzz-watcher' });
  const watched = new Inbox(watcher);
  await watcher.subscribeAsync('watch/t', { qos: 1 });

  const master = new Rand(prng(SEED));
  // Each connection gets its own stream, derived up front, so the bytes do not depend on timing.
  const seeds = Array.from({ length: CONNECTIONS }, () => master.int(2 ** 32));
  const started = Date.now();
  let next = 0;
  let ran = 0;
  let bytes = 0;
  let closed = 0;
  let connacked = 0;
  const workers = Array.from({ length: PARALLEL }, async () => {
    while (next < seeds.length) {
      const seed = seeds[next++]!;
      const s = await fuzzConnection(broker.mqttPort, new Rand(prng(seed)), PACKETS_PER_CONNECTION);
      ran++;
      bytes += s.bytes;
      if (s.closedByBroker) closed++;
      if (s.connacked) connacked++;
      assert.equal(broker.proc.exitCode, null, `broker died during the connection with seed ${seed}`);
      assert.equal(broker.proc.signalCode, null, `broker died during the connection with seed ${seed}`);
    }
  });
  await Promise.all(workers);
  t.diagnostic(`${ran} connections, ${ran * PACKETS_PER_CONNECTION} packets, ${bytes} bytes in ${Date.now() - started} ms; ${closed} closed by the broker, ${connacked} got a CONNACK`);
  assert.equal(ran, CONNECTIONS, 'every connection ran');
  // Sanity: the fuzzer did reach the broker's logic, and the broker did close bad connections.
  assert.ok(connacked > ran / 4, 'too few connections got past CONNECT');
  assert.ok(closed > ran / 4, 'too few bad connections were closed by the broker');
  assert.ok(closed < ran, 'every connection was closed by the broker: nothing got deep');

  // Still alive, still healthy.
  assert.equal(broker.proc.exitCode, null, 'broker process exited');
  const res = await fetch(`http://127.0.0.1:${broker.httpPort}/status`);
  assert.equal(res.status, 200);
  const json = (await (await fetch(`http://127.0.0.1:${broker.httpPort}/status?format=json`)).json()) as { metrics: Record<string, number> };
  t.diagnostic(`malformed packets counted by the broker: ${json.metrics['packets.malformed']}`);

  // The watcher is still connected and receives.
  assert.ok(watcher.connected, 'the well-behaved client lost its connection');
  await watcher.publishAsync('watch/t', 'still here', { qos: 1 });
  assert.equal((await watched.waitFor(1, 5000))[0]!.payload.toString(), 'still here');

  // A fresh pair of clients, 3.1.1 and 5.0, publish and subscribe at QoS 1.
  for (const protocolVersion of [4, 5] as const) {
    const s = await connect(broker.url, { protocolVersion, clientId: `fuzz-after-sub-${protocolVersion}` });
    const p = await connect(broker.url, { protocolVersion, clientId: `fuzz-after-pub-${protocolVersion}` });
    try {
      const inbox = new Inbox(s);
      const [grant] = await s.subscribeAsync(`after/${protocolVersion}/#`, { qos: 1 });
      assert.equal(grant?.qos, 1);
      for (let i = 0; i < 10; i++) await p.publishAsync(`after/${protocolVersion}/${i}`, `m${i}`, { qos: 1 });
      const got = await inbox.waitFor(10, 5000);
      assert.deepEqual(
        got.map((m) => m.payload.toString()),
        Array.from({ length: 10 }, (_, i) => `m${i}`),
      );
      assert.ok(got.every((m) => m.packet.qos === 1));
    } finally {
      await end(s, p);
    }
  }

  // Bad input must never turn into an internal error.
  const errors = broker.logs.filter((l) => typeof l.level === 'number' && l.level >= 50);
  assert.deepEqual(
    errors.map((e) => JSON.stringify(e).slice(0, 600)),
    [],
    'the broker logged internal errors while being fuzzed',
  );
});
