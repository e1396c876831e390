import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, kafkaNodeEnv, startBroker } from '../helpers/broker';
import { flowSuite } from '../helpers/flow-suite';

// Flow control across gateways over a real Kafka: publishers on gateway A, subscribers on
// gateway B, whose downlink delivers; a session that falls behind there reads its backlog from
// the messages topic instead of holding up the downlink.
const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `f${process.pid}x${Date.now()}.`;
const env = (name: string): Record<string, string> =>
  kafkaNodeEnv(name, prefix, {
    TRIBUTARY_SYS_TOPICS__SYS_MSG_INTERVAL: '0',
    TRIBUTARY_SYS_TOPICS__SYS_HEARTBEAT_INTERVAL: '0',
    TRIBUTARY_MQTT__MAX_MQUEUE_LEN: '100',
    TRIBUTARY_MQTT__MAX_SEND_BUFFER: '256KB',
  });
const start = (command: string, name: string): Promise<BrokerProcess> => startBroker({ command, env: env(name) });

describe('flow control across two gateways over Kafka', () => {
  let router: BrokerProcess;
  let retain: BrokerProcess;
  let a: BrokerProcess;
  let b: BrokerProcess;
  before(async () => {
    assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
    router = await start('router', 'router');
    retain = await start('retain', 'retain');
    [a, b] = await Promise.all([start('gateway', 'fgw-a'), start('gateway', 'fgw-b')]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([router?.stop(), retain?.stop()]);
  });

  flowSuite('publishers on gateway A, subscribers on gateway B', () => ({ pub: a, sub: b, all: [a, b], sameProcess: false }));
});
