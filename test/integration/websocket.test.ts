import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import * as mp from 'mqtt-packet';
import WebSocket from 'ws';
import { createParser, Packet } from '@tributary/mqtt';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { end } from '../helpers/clients';
import { once, open, Opened, uniqueTopic, waitUntil } from '../helpers/util';

const VERSIONS = [4, 5] as const;

let b: BrokerProcess;
let wsUrl: string;
const clients: MqttClient[] = [];
const sockets: WebSocket[] = [];

before(async () => {
  b = await startBroker();
  wsUrl = `ws://127.0.0.1:${b.wsPort}/mqtt`;
});
after(async () => {
  await b?.stop();
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await end(...clients.splice(0));
});

async function client(url: string, opts: IClientOptions = {}): Promise<Opened> {
  const o = await open(url, opts);
  clients.push(o.client);
  return o;
}

/** MQTT over a bare WebSocket: the test decides how bytes are framed. */
class WsRaw {
  readonly packets: Packet[] = [];
  private readonly parser = createParser();

  private constructor(
    readonly ws: WebSocket,
    private readonly protocolVersion: number,
  ) {
    this.parser.settings = { protocolVersion };
    this.parser.on('packet', (p) => this.packets.push(p));
    ws.on('message', (data: Buffer) => this.parser.parse(data));
  }

  static async open(protocolVersion = 4): Promise<WsRaw> {
    const ws = new WebSocket(wsUrl, ['mqtt']);
    sockets.push(ws);
    await once(ws, 'open');
    return new WsRaw(ws, protocolVersion);
  }

  bytes(packet: mp.Packet): Buffer {
    return mp.generate(packet, { protocolVersion: this.protocolVersion });
  }

  /** Sends each buffer as its own binary frame, in order. */
  async frames(...chunks: Buffer[]): Promise<void> {
    for (const c of chunks) await new Promise<void>((resolve, reject) => this.ws.send(c, { binary: true }, (err) => (err ? reject(err) : resolve())));
  }

  async next(cmd: Packet['cmd'], n = 1): Promise<Packet[]> {
    const of = (): Packet[] => this.packets.filter((p) => p.cmd === cmd);
    await waitUntil(() => of().length >= n, `${n} × ${cmd} over WebSocket`, 5000);
    return of();
  }
}

const connectPacket = (clientId: string, protocolVersion: 4 | 5): mp.IConnectPacket => ({
  cmd: 'connect',
  protocolId: 'MQTT',
  protocolVersion,
  clientId,
  clean: true,
  keepalive: 60,
  ...(protocolVersion === 5 ? { properties: { userProperties: { padding: 'x'.repeat(200) } } } : {}),
});

describe('MQTT over WebSocket', () => {
  for (const pv of VERSIONS) {
    test(`v${pv}: a WebSocket client and a TCP client exchange messages both ways`, async () => {
      const topic = uniqueTopic('ws/x');
      const ws = await client(wsUrl, { protocolVersion: pv });
      const tcp = await client(b.url, { protocolVersion: pv });
      await ws.client.subscribeAsync(`${topic}/to-ws`, { qos: 2 });
      await tcp.client.subscribeAsync(`${topic}/to-tcp`, { qos: 2 });

      for (const qos of [0, 1, 2] as const) {
        await tcp.client.publishAsync(`${topic}/to-ws`, `tcp→ws q${qos}`, { qos });
        await ws.client.publishAsync(`${topic}/to-tcp`, `ws→tcp q${qos}`, { qos });
      }
      const toWs = await ws.inbox.waitFor(3);
      const toTcp = await tcp.inbox.waitFor(3);
      assert.deepEqual(toWs.map((m) => [m.payload.toString(), m.packet.qos]).sort(), [['tcp→ws q0', 0], ['tcp→ws q1', 1], ['tcp→ws q2', 2]]);
      assert.deepEqual(toTcp.map((m) => [m.payload.toString(), m.packet.qos]).sort(), [['ws→tcp q0', 0], ['ws→tcp q1', 1], ['ws→tcp q2', 2]]);
    });
  }

  test('the server selects the mqtt subprotocol', async () => {
    const ws = new WebSocket(wsUrl, ['mqtt']);
    sockets.push(ws);
    await once(ws, 'open');
    assert.equal(ws.protocol, 'mqtt');

    const both = new WebSocket(wsUrl, ['other', 'mqtt']);
    sockets.push(both);
    await once(both, 'open');
    assert.equal(both.protocol, 'mqtt', 'mqtt is picked among the offered subprotocols');
  });

  test('a WebSocket upgrade on another path is refused', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${b.wsPort}/not-mqtt`, ['mqtt']);
    sockets.push(ws);
    const err = await once<Error>(ws, 'error');
    assert.match(err.message, /Unexpected server response: 4\d\d/);
  });

  for (const pv of VERSIONS) {
    test(`v${pv}: a CONNECT split across several WebSocket frames is parsed`, async () => {
      const raw = await WsRaw.open(pv);
      const bytes = raw.bytes(connectPacket(`split-${pv}-${process.pid}`, pv));
      assert.ok(bytes.length > 20);
      // Fixed header byte, then part of the remaining length/variable header, then byte by byte, then the rest.
      await raw.frames(bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2, 9), bytes.subarray(9, 10), bytes.subarray(10, 11), bytes.subarray(11));
      const [connack] = (await raw.next('connack')) as mp.IConnackPacket[];
      assert.equal(pv === 5 ? connack!.reasonCode : connack!.returnCode, 0);

      // And a PINGREQ split in two frames.
      const ping = raw.bytes({ cmd: 'pingreq' });
      await raw.frames(ping.subarray(0, 1), ping.subarray(1));
      await raw.next('pingresp');
    });

    test(`v${pv}: several packets in one WebSocket frame are all parsed, also when one straddles frames`, async () => {
      const raw = await WsRaw.open(pv);
      const topic = uniqueTopic('ws/merged');
      const connect = raw.bytes(connectPacket(`merged-${pv}-${process.pid}`, pv));
      const subscribe = raw.bytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] } as mp.ISubscribePacket);
      const publish1 = raw.bytes({ cmd: 'publish', topic, payload: Buffer.from('one'), qos: 1, messageId: 2, retain: false, dup: false });
      const publish2 = raw.bytes({ cmd: 'publish', topic, payload: Buffer.from('two'), qos: 1, messageId: 3, retain: false, dup: false });
      const ping = raw.bytes({ cmd: 'pingreq' });

      // Frame 1: CONNECT + SUBSCRIBE + PUBLISH one; frame 2: PUBLISH two + half of PINGREQ; frame 3: the rest.
      await raw.frames(Buffer.concat([connect, subscribe, publish1]), Buffer.concat([publish2, ping.subarray(0, 1)]), ping.subarray(1));
      await raw.next('connack');
      const [suback] = (await raw.next('suback')) as mp.ISubackPacket[];
      assert.deepEqual(suback!.granted, [1]);
      const pubacks = (await raw.next('puback', 2)) as mp.IPubackPacket[];
      assert.deepEqual(pubacks.map((p) => p.messageId), [2, 3]);
      const publishes = (await raw.next('publish', 2)) as mp.IPublishPacket[];
      assert.deepEqual(publishes.map((p) => p.payload.toString()), ['one', 'two']);
      await raw.next('pingresp');
      // The order of the broker's replies follows the packets.
      assert.equal(raw.packets[0]!.cmd, 'connack');
      assert.equal(raw.packets[1]!.cmd, 'suback');
    });
  }
});
