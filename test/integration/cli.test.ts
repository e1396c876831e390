// The `tributary` command as an operator uses it: help, configuration errors, start-up logs,
// /status, SIGTERM (clean shutdown that keeps acknowledged messages), and listener conflicts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { connect as netConnect } from 'node:net';
import { resolve } from 'node:path';
import mqtt, { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import { describeTributaryConfig as describeConfig } from '@tributary/cli';
import { BIN, BrokerProcess, NODE_FLAGS, startBroker, tempDir } from '../helpers/broker';
import { end, Inbox } from '../helpers/clients';
import { RawClient } from '../helpers/raw';

/** Every listener the configuration schema has, with its bind variable and whether it is on by default. */
const LISTENERS = describeConfig()
  .filter((k) => k.key.endsWith('.bind'))
  .map((k) => {
    const parts = k.key.split('.');
    // listeners.<proto>.<name>.bind → proto:name; dashboard.listeners.http.bind → dashboard:http
    const name = parts[0] === 'listeners' ? `${parts[1]}:${parts[2]}` : `${parts[0]}:${parts[2]}`;
    const enable = describeConfig().find((e) => e.key === k.key.replace(/\.bind$/, '.enable'));
    return { name, env: k.env, enabled: enable?.default !== false };
  });
const MQTT_LISTENERS = LISTENERS.filter((l) => !l.name.startsWith('dashboard:'));

interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `tributary <args>` with the test defaults (temp data dir, loopback port 0) plus `env`;
 * a process still running after timeoutMs is killed and reported as timedOut.
 */
function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliRun> {
  const dataDir = tempDir();
  const proc = spawn(process.execPath, [BIN, ...args], {
    env: {
      ...(process.env as Record<string, string>),
      TRIBUTARY_NODE__DATA_DIR: dataDir,
      ...Object.fromEntries(LISTENERS.map((l) => [l.env, '127.0.0.1:0'])),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolvePromise) => {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, timeoutMs);
    proc.on('exit', (code, signal) => {
      clearTimeout(t);
      rmSync(dataDir, { recursive: true, force: true });
      // 'exit' can precede the last 'data' events; 'close' waits for the pipes.
      proc.once('close', () => resolvePromise({ code, signal, stdout, stderr, timedOut }));
      if (proc.stdout.readableEnded && proc.stderr.readableEnded) resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * The run ended by itself (not killed by runCli's timeout, not by a signal) with exit code
 * `code`, and `text` appears in its output: a hang or a crash does not pass as "exits non-zero".
 */
function assertExit(r: CliRun, code: number, text: RegExp | string, where: 'stdout' | 'stderr' | 'both' = 'stderr'): void {
  const out = where === 'both' ? r.stdout + r.stderr : r[where];
  assert.equal(r.timedOut, false, `still running after the timeout:\n${r.stdout}${r.stderr}`);
  assert.equal(r.signal, null, `killed by ${r.signal}`);
  assert.equal(r.code, code, `exit code ${r.code}, expected ${code}:\n${r.stdout}${r.stderr}`);
  if (typeof text === 'string') assert.ok(out.includes(text), `${where} does not include ${JSON.stringify(text)}:\n${out}`);
  else assert.match(out, text);
}

/** mqtt.js connect that also returns the CONNACK and an inbox attached before CONNECT goes out. */
async function openClient(url: string, opts: IClientOptions): Promise<{ client: MqttClient; inbox: Inbox; connack: IConnackPacket }> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  const inbox = new Inbox(client);
  const connack = await new Promise<IConnackPacket>((res, rej) => {
    client.once('connect', res);
    client.once('error', rej);
    client.once('close', () => rej(new Error('closed before CONNACK')));
  });
  return { client, inbox, connack };
}

// Independent processes: run them side by side.
describe('tributary command line', { concurrency: 2 }, () => {
  for (const args of [['--help'], ['help'], ['-h'], []]) {
    test(`tributary ${args.join(' ') || '(no arguments)'} prints usage and exits 0`, async () => {
      const r = await runCli(args);
      assert.equal(r.timedOut, false);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: tributary <command>/m);
      assert.match(r.stdout, /^\s+start\s/m);
      assert.match(r.stdout, /^\s+config\s/m);
      assert.equal(r.stderr, '');
    });
  }

  test('an unknown command prints usage on stderr and exits non-zero', async () => {
    const r = await runCli(['frobnicate']);
    assertExit(r, 2, /unknown command "frobnicate"/);
    assert.match(r.stderr, /Usage: tributary/);
  });

  for (const command of ['gateway', 'router', 'retain', 'api']) {
    test(`tributary ${command} on the embedded backbone exits non-zero saying it needs Kafka`, async () => {
      const r = await runCli([command]);
      // The fatal "start-up failed" log line (stdout) carries the reason.
      assertExit(r, 1, `tributary ${command} runs against Kafka: set backbone.type = kafka`, 'stdout');
      assert.match(r.stdout, /"msg":"start-up failed"/);
    });
  }

  test('tributary config lists every key with its environment variable', async () => {
    const r = await runCli(['config']);
    assert.equal(r.code, 0, r.stderr);
    for (const [key, env] of [
      ['listeners.tcp.default.bind', 'TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND'],
      ['mqtt.max_inflight', 'TRIBUTARY_MQTT__MAX_INFLIGHT'],
      ['node.data_dir', 'TRIBUTARY_NODE__DATA_DIR'],
      ['backbone.embedded.fsync', 'TRIBUTARY_BACKBONE__EMBEDDED__FSYNC'],
    ] as const) {
      assert.ok(r.stdout.includes(key), `config does not list ${key}`);
      assert.ok(r.stdout.includes(env), `config does not list ${env}`);
    }
  });

  const invalid: [name: string, value: string, key: string][] = [
    ['TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND', 'nonsense', 'listeners.tcp.default.bind'],
    ['TRIBUTARY_MQTT__MAX_INFLIGHT', '0', 'mqtt.max_inflight'],
    ['TRIBUTARY_MQTT__IDLE_TIMEOUT', 'soon', 'mqtt.idle_timeout'],
    ['TRIBUTARY_LOG__LEVEL', 'loud', 'log.level'],
    ['TRIBUTARY_LISTENERS__WS__DEFAULT__ENABLE', 'maybe', 'listeners.ws.default.enable'],
  ];
  for (const [name, value, key] of invalid) {
    test(`tributary start with ${name}=${value} exits non-zero naming ${key}`, async () => {
      const r = await runCli(['start'], { [name]: value });
      assertExit(r, 2, /^tributary: invalid configuration:/);
      assert.ok(r.stderr.includes(key), `stderr does not name ${key}:\n${r.stderr}`);
      assert.ok(r.stderr.includes(name), `stderr does not name ${name}:\n${r.stderr}`);
      assert.ok(!r.stdout.includes('tributary started'), 'start-up continued');
    });
  }

  test('several invalid values are all reported at once', async () => {
    const r = await runCli(['start'], { TRIBUTARY_MQTT__MAX_INFLIGHT: '0', TRIBUTARY_MQTT__MAX_PACKET_SIZE: '-5' });
    assertExit(r, 2, /^tributary: invalid configuration:/);
    assert.ok(r.stderr.includes('mqtt.max_inflight') && r.stderr.includes('mqtt.max_packet_size'), r.stderr);
  });
});

test('started without the shipped Node.js flags, the broker warns once naming each, and runs', async () => {
  const bare = await startBroker({ nodeFlags: [] });
  try {
    const warned = bare.logs.filter((l) => l.level === 40 && typeof l.flag === 'string').map((l) => l.flag);
    assert.deepEqual(warned, NODE_FLAGS);
    assert.ok(bare.logs.some((l) => l.msg === 'tributary started'));
  } finally {
    await bare.stop();
  }
});

describe('a running broker', () => {
  let b: BrokerProcess;
  const dataDir = tempDir();

  before(async () => {
    b = await startBroker({ dataDir, env: { TRIBUTARY_NO_SUCH__KEY: 'x', TRIBUTARY_NODE__NAME: 'cli-test@127.0.0.1' } });
  });

  after(async () => {
    if (b && b.proc.exitCode === null) await b.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('an unknown TRIBUTARY_ variable is logged as a warning naming it, and start-up continues', () => {
    const warnings = b.logs.filter((l) => l.level === 40);
    const w = warnings.find((l) => String(l.msg).includes('TRIBUTARY_NO_SUCH__KEY'));
    assert.ok(w, `no warning names TRIBUTARY_NO_SUCH__KEY: ${JSON.stringify(warnings)}`);
    assert.ok(b.logs.some((l) => l.msg === 'tributary started'));
    assert.equal(b.proc.exitCode, null);
  });

  test('started with the shipped Node.js flags, it does not warn about them', () => {
    assert.deepEqual(b.logs.filter((l) => typeof l.flag === 'string'), []);
  });

  test('start-up logs every listener with its bound address, and the data directory', async () => {
    const byListener = new Map(b.logs.filter((l) => typeof l.listener === 'string').map((l) => [l.listener as string, String(l.bind)]));
    // Every listener that is on by default is logged, with the address it really bound.
    const expected = LISTENERS.filter((l) => l.enabled).map((l) => l.name);
    assert.ok(expected.includes('tcp:default') && expected.includes('ws:default') && expected.includes('dashboard:http'));
    assert.deepEqual([...byListener.keys()].sort(), [...expected].sort());
    assert.equal(byListener.get('tcp:default'), `127.0.0.1:${b.mqttPort}`);
    assert.equal(byListener.get('ws:default'), `127.0.0.1:${b.wsPort}`);
    assert.equal(byListener.get('dashboard:http'), `127.0.0.1:${b.httpPort}`);
    const ports = [...byListener.values()].map((bind) => Number(bind.split(':').pop()));
    for (const port of ports) assert.ok(port > 0);
    // The summary line names every MQTT listener and the data directory.
    const started = b.logs.find((l) => l.msg === 'tributary started')!;
    const mqttListeners = MQTT_LISTENERS.filter((l) => l.enabled).map((l) => `${l.name}@${byListener.get(l.name)}`);
    assert.deepEqual([...(started.listeners as string[])].sort(), mqttListeners.sort());
    assert.equal(started.dataDir, resolve(dataDir));
    assert.equal(b.logs.find((l) => l.msg === 'starting tributary')?.dataDir, resolve(dataDir));
    // The logged ports are the real ones: each accepts a connection.
    for (const port of ports) {
      await new Promise<void>((res, rej) => {
        const s = netConnect(port, '127.0.0.1', () => (s.destroy(), res()));
        s.once('error', rej);
      });
    }
  });

  test('GET /status answers 200 in the text form, and JSON with ?format=json', async () => {
    const base = `http://127.0.0.1:${b.httpPort}`;
    const text = await fetch(`${base}/status`);
    assert.equal(text.status, 200);
    assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await text.text(), 'Node cli-test@127.0.0.1 is started\ntributary is running\n');

    const res = await fetch(`${base}/status?format=json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const json = (await res.json()) as { node: string; status: string; version: string; stats: Record<string, number>; metrics: Record<string, number> };
    assert.equal(json.node, 'cli-test@127.0.0.1');
    assert.equal(json.status, 'running');
    assert.match(json.version, /^\d+\.\d+\.\d+/);
    for (const k of ['connections.count', 'sessions.count', 'subscriptions.count', 'retained.count', 'uptime']) assert.equal(typeof json.stats[k], 'number', `stats.${k}`);
    assert.equal(typeof json.metrics, 'object');
  });

  test('SIGTERM: 5.0 clients get DISCONNECT 0x8B, the process exits 0, an acknowledged QoS 1 message reaches its persistent session after restart', async () => {
    // A persistent subscriber, offline when the message is published.
    const subOpts: IClientOptions = { protocolVersion: 5, clientId: 'cli-persistent', clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await openClient(b.url, subOpts);
    await first.client.subscribeAsync('cli/q', { qos: 1 });
    await first.client.endAsync();
    const pub = await openClient(b.url, { protocolVersion: 4, clientId: 'cli-pub' });
    await pub.client.publishAsync('cli/q', 'acked before SIGTERM', { qos: 1 });

    const raw5 = await RawClient.connected(b.mqttPort, 'cli-raw5', 5);
    const raw4 = await RawClient.connected(b.mqttPort, 'cli-raw4', 4);
    const code = await b.stop();
    assert.equal(code, 0);
    assert.equal(b.proc.signalCode, null);
    await raw5.waitClosed(2000);
    await raw4.waitClosed(2000);
    assert.equal(raw5.disconnectReason(), 0x8b);
    assert.equal(raw4.disconnectReason(), undefined);
    assert.ok(b.logs.some((l) => l.msg === 'tributary stopped'), 'no "tributary stopped" log');
    end(pub.client);

    // Same data directory: the session and its undelivered message are still there.
    b = await startBroker({ dataDir });
    const again = await openClient(b.url, subOpts);
    try {
      assert.equal(again.connack.sessionPresent, true);
      const [m] = await again.inbox.waitFor(1, 5000);
      assert.equal(m!.topic, 'cli/q');
      assert.equal(m!.payload.toString(), 'acked before SIGTERM');
      assert.equal(m!.packet.qos, 1);
    } finally {
      await end(again.client);
    }
  });
});

describe('listener conflicts', { concurrency: 2 }, () => {
  let blocker: Server;
  let port = 0;
  before(async () => {
    blocker = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    port = (blocker.address() as { port: number }).port;
  });
  after(() => new Promise<void>((res) => blocker.close(() => res())));

  for (const { name, env } of LISTENERS.filter((l) => l.enabled)) {
    test(`a port already in use for ${name} fails start-up with a message naming the listener`, async () => {
      const r = await runCli(['start'], { [env]: `127.0.0.1:${port}` });
      assertExit(r, 1, /"msg":"start-up failed"/, 'stdout');
      const out = r.stdout + r.stderr;
      assert.ok(out.includes(name), `output does not name ${name}:\n${out}`);
      assert.ok(out.includes(String(port)), `output does not name port ${port}:\n${out}`);
      assert.ok(!out.includes('tributary started'), 'start-up reported success');
    });
  }
});
