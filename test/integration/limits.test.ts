import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end } from '../helpers/clients';
import { RawClient } from '../helpers/raw';

let b: BrokerProcess;
before(async () => {
  b = await startBroker({ env: { TRIBUTARY_LISTENERS__TCP__DEFAULT__MAX_CONNECTIONS: '2' } });
});
after(() => b?.stop());

it('listeners.tcp.default.max_connections refuses connections beyond the limit of that listener only', async () => {
  const one = await RawClient.connected(b.mqttPort, 'lim-1');
  const two = await RawClient.connected(b.mqttPort, 'lim-2');
  const three = await RawClient.open(b.mqttPort);
  three.send({ cmd: 'connect', clientId: 'lim-3', protocolVersion: 4, protocolId: 'MQTT', clean: true, keepalive: 60 });
  await three.waitClosed();
  assert.equal(three.packets.length, 0, 'no CONNACK beyond the limit');
  // Another listener has its own count.
  const ws = await connect(`ws://127.0.0.1:${b.wsPort}/mqtt`, { clientId: 'lim-ws' });
  await end(ws);
  // A freed place can be taken again.
  one.destroy();
  await one.waitClosed();
  let four: RawClient | undefined;
  for (let i = 0; i < 50 && !four; i++) {
    four = await RawClient.connected(b.mqttPort, 'lim-4').catch(() => undefined);
  }
  assert.ok(four, 'a connection is accepted once one closed');
  four.destroy();
  two.destroy();
});
