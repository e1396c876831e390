// TLS-PSK on the ssl listener (psk_authentication): mosquitto_pub and mosquitto_sub with
// --psk/--psk-identity; a wrong key and an unknown identity are refused; a PSK client's
// identity is its username for authorization; certificate clients keep working beside them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerProcess, startBroker, tempDir } from '../helpers/broker';
import { clientTracker, open, uniqueTopic, waitForPayload } from '../helpers/util';

const KEY = randomBytes(32).toString('hex');
const OTHER_KEY = randomBytes(16).toString('hex');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a mosquitto client to completion (killed after 15 s). */
function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('TLS-PSK on the ssl listener', () => {
  const dir = tempDir();
  let b: BrokerProcess;
  const c = clientTracker(() => b.url);
  const psk = (identity: string, key: string): string[] => ['-h', '127.0.0.1', '-p', String(b.sslPort), '--psk', key, '--psk-identity', identity];

  before(async () => {
    // Comments, blank lines and the separator "=" (psk_authentication.separator).
    writeFileSync(join(dir, 'psk.txt'), `# device keys\nsensor-1=${KEY}\n\nsensor-2=${OTHER_KEY}\n`);
    writeFileSync(join(dir, 'acl.conf'), '{allow, {username, "sensor-1"}, publish, ["psk/#"]}.\n{allow, all, subscribe, ["#"]}.\n');
    b = await startBroker({
      env: {
        TRIBUTARY_PSK_AUTHENTICATION__ENABLE: 'true',
        TRIBUTARY_PSK_AUTHENTICATION__INIT_FILE: join(dir, 'psk.txt'),
        TRIBUTARY_PSK_AUTHENTICATION__SEPARATOR: '=',
        TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path: join(dir, 'acl.conf') }]),
        TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny',
      },
    });
  });
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the right key delivers both ways; the identity is the username authorization sees', async () => {
    const sub = await c.client();
    await sub.client.subscribeAsync('psk/#', { qos: 1 });
    const topic = uniqueTopic('psk');
    const r = await run('mosquitto_pub', [...psk('sensor-1', KEY), '-q', '1', '-t', topic, '-m', 'over psk']);
    assert.equal(r.code, 0, r.stderr);
    await waitForPayload(sub.inbox, 'over psk');

    // sensor-2 has a key but no publish rule: its QoS 1 message (3.1.1) is acknowledged and dropped.
    const r2 = await run('mosquitto_pub', [...psk('sensor-2', OTHER_KEY), '-q', '1', '-t', topic, '-m', 'not allowed']);
    assert.equal(r2.code, 0, r2.stderr);
    // An explicit username wins over the identity: "sensor-1" claimed by sensor-2 passes the rule.
    const r3 = await run('mosquitto_pub', [...psk('sensor-2', OTHER_KEY), '-u', 'sensor-1', '-q', '1', '-t', topic, '-m', 'marker']);
    assert.equal(r3.code, 0, r3.stderr);
    await waitForPayload(sub.inbox, 'marker');
    assert.ok(!sub.inbox.messages.some((m) => m.payload.toString() === 'not allowed'));

    // mosquitto_sub over PSK receives what an mqtt.js client publishes over TCP (as sensor-1: the ACL's one publisher).
    const subTopic = uniqueTopic('psk');
    const receiving = run('mosquitto_sub', [...psk('sensor-1', KEY), '-q', '1', '-t', subTopic, '-C', '1', '-W', '10', '-d']);
    const pub = await c.client({ username: 'sensor-1' });
    // Publish until the subscriber's subscription is in place (its SUBACK is on its own connection).
    const timer = setInterval(() => pub.client.publish(subTopic, 'to psk subscriber', { qos: 1 }), 200);
    const got = await receiving.finally(() => clearInterval(timer));
    assert.equal(got.code, 0, got.stderr + got.stdout);
    assert.match(got.stdout, /to psk subscriber/);
  });

  test('a wrong key and an unknown identity are refused; the broker keeps serving', async () => {
    const topic = uniqueTopic('psk');
    const wrong = await run('mosquitto_pub', [...psk('sensor-1', OTHER_KEY), '-t', topic, '-m', 'x']);
    assert.notEqual(wrong.code, 0, 'wrong key refused');
    assert.match(wrong.stderr, /TLS|protocol|Connection|error/i);
    const unknown = await run('mosquitto_pub', [...psk('nobody', KEY), '-t', topic, '-m', 'x']);
    assert.notEqual(unknown.code, 0, 'unknown identity refused');
    assert.equal(b.proc.exitCode, null);
    const ok = await run('mosquitto_pub', [...psk('sensor-1', KEY), '-t', topic, '-m', 'x']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('certificate clients still connect to the same listener (TLS 1.2 while PSK is on)', async () => {
    const o = await open(`mqtts://127.0.0.1:${b.sslPort}`, { rejectUnauthorized: false });
    c.clients.push(o.client);
    assert.equal((o.client.stream as unknown as { getProtocol(): string }).getProtocol(), 'TLSv1.2');
  });
});

test('a malformed psk init file stops start-up naming the file and line, without the key', async () => {
  const dir = tempDir();
  const path = join(dir, 'psk.txt');
  writeFileSync(path, `a:${KEY}\nb:not-hex-${KEY}\n`);
  try {
    await assert.rejects(startBroker({ env: { TRIBUTARY_PSK_AUTHENTICATION__ENABLE: 'true', TRIBUTARY_PSK_AUTHENTICATION__INIT_FILE: path } }), (err: Error) => {
      assert.ok(err.message.includes(`${path}:2: the key of \\"b\\" is not an even number of hex digits`), err.message);
      assert.ok(!err.message.includes(KEY), 'the key is not logged');
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
