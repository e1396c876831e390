import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, test } from 'node:test';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { uniqueTopic, waitUntil } from '../helpers/util';

/** Debian's mosquitto-clients against the broker: an independent MQTT implementation. */

const VERSIONS = ['mqttv311', 'mqttv5'] as const;
type Version = (typeof VERSIONS)[number];
const FORMAT = 'MSG|%t|%q|%r|%p';

let b: BrokerProcess;
const children: ChildProcess[] = [];

before(async () => {
  b = await startBroker();
});
after(async () => {
  await b?.stop();
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Message {
  topic: string;
  qos: number;
  retain: boolean;
  payload: string;
}

/** A running mosquitto_sub/mosquitto_pub with its output lines. */
class Tool {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(
    cmd: string,
    readonly args: string[],
  ) {
    // stdbuf -oL: mosquitto_sub block-buffers stdout into a pipe; line-buffered, the SUBACK line arrives when it happens.
    const proc = spawn('stdbuf', ['-oL', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    createInterface({ input: proc.stdout! }).on('line', (l) => this.lines.push(l));
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    // 'close', not 'exit': the process can exit before its last stdout lines were read.
    this.exited = new Promise((resolve) => proc.once('close', (code) => resolve(code)));
  }

  get messages(): Message[] {
    return this.lines
      .filter((l) => l.startsWith('MSG|'))
      .map((l) => {
        const [, topic, qos, retain, ...rest] = l.split('|');
        return { topic: topic!, qos: Number(qos), retain: retain === '1', payload: rest.join('|') };
      });
  }

  /** Waits until mosquitto_sub (run with -d) logged its SUBACK. */
  subscribed(): Promise<void> {
    return waitUntil(() => this.lines.some((l) => l.includes('received SUBACK')), `SUBACK for ${this.args.join(' ')}; stderr: ${this.stderr}`);
  }

  async exitCode(): Promise<number | null> {
    return this.exited;
  }
}

const common = (v: Version): string[] => ['-h', '127.0.0.1', '-p', String(b.mqttPort), '-V', v];

function sub(v: Version, topic: string, extra: string[] = []): Tool {
  return new Tool('mosquitto_sub', [...common(v), '-t', topic, '-d', '-F', FORMAT, '-W', '15', ...extra]);
}

async function pub(v: Version, topic: string, extra: string[]): Promise<void> {
  const t = new Tool('mosquitto_pub', [...common(v), '-t', topic, ...extra]);
  const code = await t.exitCode();
  assert.equal(code, 0, `mosquitto_pub ${t.args.join(' ')} failed: ${t.stderr}`);
}

describe('mosquitto_sub / mosquitto_pub', () => {
  for (const v of VERSIONS) {
    test(`${v}: QoS 0, 1 and 2 messages go from mosquitto_pub to mosquitto_sub`, async () => {
      const topic = uniqueTopic(`mosq/${v}/qos`);
      const s = sub(v, topic, ['-q', '2', '-C', '3']);
      await s.subscribed();
      for (const qos of [0, 1, 2]) await pub(v, topic, ['-q', String(qos), '-m', `payload q${qos}`]);
      assert.equal(await s.exitCode(), 0, `mosquitto_sub: ${s.stderr}`);
      assert.deepEqual(s.messages, [0, 1, 2].map((qos) => ({ topic, qos, retain: false, payload: `payload q${qos}` })));
    });

    test(`${v}: the subscription QoS caps the delivery QoS`, async () => {
      const topic = uniqueTopic(`mosq/${v}/cap`);
      const s = sub(v, topic, ['-q', '1', '-C', '2']);
      await s.subscribed();
      await pub(v, topic, ['-q', '2', '-m', 'two']);
      await pub(v, topic, ['-q', '0', '-m', 'zero']);
      assert.equal(await s.exitCode(), 0, s.stderr);
      assert.deepEqual(s.messages.map((m) => [m.payload, m.qos]), [['two', 1], ['zero', 0]]);
    });

    test(`${v}: a retained message reaches a later mosquitto_sub with the retain flag, and is cleared with -r -n`, async () => {
      const topic = uniqueTopic(`mosq/${v}/retained`);
      await pub(v, topic, ['-q', '1', '-r', '-m', `kept by ${v}`]);
      const s = sub(v, topic, ['-q', '1', '-C', '1']);
      assert.equal(await s.exitCode(), 0, s.stderr);
      assert.deepEqual(s.messages, [{ topic, qos: 1, retain: true, payload: `kept by ${v}` }]);

      await pub(v, topic, ['-q', '1', '-r', '-n']);
      const later = sub(v, topic, ['-q', '1', '-C', '1']);
      await later.subscribed();
      await pub(v, topic, ['-q', '1', '-m', 'live']);
      assert.equal(await later.exitCode(), 0, later.stderr);
      assert.deepEqual(later.messages, [{ topic, qos: 1, retain: false, payload: 'live' }], 'the retained message was cleared');
    });

    test(`${v}: a persistent session (-c -i) receives what was published while it was offline`, async () => {
      const topic = uniqueTopic(`mosq/${v}/persist`);
      const id = `mosq-${v}-${process.pid}`;
      const session = ['-c', '-i', id, '-q', '1', ...(v === 'mqttv5' ? ['-x', '300'] : [])];
      // Subscribe, then disconnect as soon as the SUBACK arrived (-E).
      const first = sub(v, topic, [...session, '-E']);
      assert.equal(await first.exitCode(), 0, first.stderr);

      await pub(v, topic, ['-q', '1', '-m', 'offline q1']);
      await pub(v, topic, ['-q', '2', '-m', 'offline q2']);
      await pub(v, topic, ['-q', '0', '-m', 'offline q0']);

      const again = sub(v, topic, [...session, '-C', '3']);
      assert.equal(await again.exitCode(), 0, again.stderr);
      assert.deepEqual(
        again.messages.map((m) => [m.payload, m.qos]),
        [['offline q1', 1], ['offline q2', 1], ['offline q0', 0]],
      );
    });
  }
});
