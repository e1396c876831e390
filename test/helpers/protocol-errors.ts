// What the protocol-errors-*.test.ts files share. Bad input from one client closes only that
// client's connection: after every case, two other clients that connected before it (3.1.1
// publisher, 5.0 subscriber) must still exchange a QoS 1 message. One broker per file, with small
// limits so they can be reached cheaply.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import type * as mp from 'mqtt-packet';
import { BrokerProcess, startBroker } from './broker';
import { connect, end, Inbox } from './clients';
import { RawClient } from './raw';

export const MAX_PACKET_SIZE = 1024;
export const MAX_INFLIGHT = 2;

/** The broker under test and its bystanders; read the fields inside tests (they exist from the file's before hook on). */
export interface BrokerWithBystanders {
  /** Started with mqtt.max_packet_size MAX_PACKET_SIZE, mqtt.max_inflight MAX_INFLIGHT and mqtt.idle_timeout 1s. */
  readonly broker: BrokerProcess;
  /** The 3.1.1 bystander; it publishes to bystander/t. */
  readonly pub: MqttClient;
  /** What the 5.0 bystander, subscribed to bystander/t at QoS 1, has received. */
  readonly inbox: Inbox;
  /** The clients connected before the bad one still publish and receive. */
  bystandersWork(): Promise<void>;
}

/** Starts the broker and connects the bystanders before the file's tests; stops them after. */
export function brokerWithBystanders(): BrokerWithBystanders {
  let state: { broker: BrokerProcess; pub: MqttClient; sub: MqttClient; inbox: Inbox } | undefined;
  const running = (): NonNullable<typeof state> => state ?? assert.fail('the broker starts in the before hook');
  let seq = 0;
  let logsChecked = 0;

  before(async () => {
    const broker = await startBroker({
      env: {
        TRIBUTARY_MQTT__MAX_PACKET_SIZE: String(MAX_PACKET_SIZE),
        TRIBUTARY_MQTT__IDLE_TIMEOUT: '1s',
        TRIBUTARY_MQTT__MAX_INFLIGHT: String(MAX_INFLIGHT),
      },
    });
    const pub = await connect(broker.url, { protocolVersion: 4, clientId: 'bystander-pub' });
    const sub = await connect(broker.url, { protocolVersion: 5, clientId: 'bystander-sub' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('bystander/t', { qos: 1 });
    state = { broker, pub, sub, inbox };
  });

  after(async () => {
    await end(state?.pub, state?.sub);
    await state?.broker.stop();
  });

  return {
    get broker() {
      return running().broker;
    },
    get pub() {
      return running().pub;
    },
    get inbox() {
      return running().inbox;
    },
    async bystandersWork() {
      const { broker, pub, sub, inbox } = running();
      assert.ok(pub.connected && sub.connected, 'a bystander connection was closed');
      const n = ++seq;
      const before = inbox.messages.length;
      await pub.publishAsync('bystander/t', `m${n}`, { qos: 1 });
      const msgs = await inbox.waitFor(before + 1, 5000);
      assert.equal(msgs[before]!.payload.toString(), `m${n}`);
      assert.equal(broker.proc.exitCode, null, 'broker process exited');
      // Bad input is the client's problem, never an internal error of the broker.
      const errors = broker.logs.slice(logsChecked).filter((l) => typeof l.level === 'number' && l.level >= 50);
      logsChecked = broker.logs.length;
      assert.deepEqual(errors, [], 'the broker logged errors');
    },
  };
}

/** The broker closed `c`; a 5.0 client got DISCONNECT `reason` first, a 3.x client none. */
export async function expectClosed(c: RawClient, version: 4 | 5, reason: number): Promise<void> {
  await c.waitClosed(5000);
  if (version === 5) assert.equal(c.disconnectReason(), reason, `DISCONNECT reason 0x${reason.toString(16)}`);
  else assert.equal(c.disconnectReason(), undefined, 'a 3.1.1 client gets no DISCONNECT');
}

export function str16(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

/** A QoS 0 PUBLISH with the topic (and 5.0 properties, Property Length first) given as raw bytes (remaining length < 128). */
export function rawPublish(topic: Buffer, version: 4 | 5, payload = Buffer.from('x'), properties = Buffer.from([0])): Buffer {
  const body = Buffer.concat([str16(topic), version === 5 ? properties : Buffer.alloc(0), payload]);
  assert.ok(body.length < 128);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

export function gen(packet: mp.Packet, version: number): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('mqtt-packet') as typeof mp).generate(packet, { protocolVersion: version });
}

export const VERSIONS = [4, 5] as const;
let idn = 0;
/** A client id no other case of the file uses. */
export const cid = (what: string): string => `pe-${what}-${++idn}`;
