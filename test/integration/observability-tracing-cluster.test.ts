// One trace across two gateways and the router over a real Kafka: the PUBLISH span on gateway A
// (continuing the publisher's traceparent), the router's route span and the deliver span on
// gateway B, whose subscriber gets the traceparent user property; the context travels in the
// Kafka record.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, kafkaNodeEnv, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { OtlpReceiver } from '../helpers/otlp';

const kafka = process.env.TRIBUTARY_TEST_KAFKA ?? '';
const prefix = `o${process.pid}x${Date.now()}.`;
const receiver = new OtlpReceiver();
let router: BrokerProcess;
let a: BrokerProcess;
let b: BrokerProcess;

before(async () => {
  assert.match(kafka, /:\d+$/, 'TRIBUTARY_TEST_KAFKA must name a Kafka broker (npm test starts one)');
  const endpoint = await receiver.start();
  const env = (name: string): Record<string, string> => kafkaNodeEnv(name, prefix, { TRIBUTARY_OPENTELEMETRY__TRACES__ENABLE: 'true', TRIBUTARY_OPENTELEMETRY__EXPORTER__ENDPOINT: endpoint });
  router = await startBroker({ command: 'router', env: env('router') });
  [a, b] = await Promise.all([startBroker({ command: 'gateway', env: env('gw-a') }), startBroker({ command: 'gateway', env: env('gw-b') })]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await router?.stop();
  await receiver.stop();
});

it('gateway A publishes, gateway B delivers: one trace', async () => {
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const parent = 'b7ad6b7169203331';
  const sub = await connect(b.url, { clientId: 'xtrace-sub', protocolVersion: 5 });
  const pub = await connect(a.url, { clientId: 'xtrace-pub', protocolVersion: 5 });
  try {
    await sub.subscribeAsync('xtrace/t', { qos: 1 });
    const inbox = new Inbox(sub);
    await pub.publishAsync('xtrace/t', 'hello', { qos: 1, properties: { userProperties: { traceparent: `00-${traceId}-${parent}-01` } } });
    const [got] = await inbox.waitFor(1, 20_000);
    const publish = await receiver.span((s) => s.name === 'PUBLISH xtrace/t');
    assert.equal(publish.instance, 'gw-a');
    assert.equal(publish.traceId, traceId);
    assert.equal(publish.parentSpanId, parent);
    assert.equal(got!.packet.properties?.userProperties?.traceparent, `00-${traceId}-${publish.spanId}-01`);
    const route = await receiver.span((s) => s.name === 'route xtrace/t');
    assert.equal(route.instance, 'router');
    assert.equal(route.traceId, traceId);
    assert.equal(route.parentSpanId, publish.spanId);
    assert.deepEqual(route.attributes?.find((x) => x.key === 'tributary.gateways')?.value.arrayValue?.values.map((v) => v.stringValue), ['gw-b']);
    const deliver = await receiver.span((s) => s.name === 'deliver xtrace/t');
    assert.equal(deliver.instance, 'gw-b');
    assert.equal(deliver.traceId, traceId);
    assert.equal(deliver.parentSpanId, publish.spanId);
  } finally {
    await end(pub);
    await end(sub);
  }
});
