// OpenTelemetry traces from a real broker to an OTLP/HTTP receiver written here: spans for a
// CONNECT and for PUBLISH → durable append → delivery, continuing the publisher's traceparent,
// and the traceparent user property on the delivered v5 PUBLISH.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';
import { OtlpReceiver } from '../helpers/otlp';

const receiver = new OtlpReceiver();
let b: BrokerProcess;

before(async () => {
  const endpoint = await receiver.start();
  b = await startBroker({ env: { TRIBUTARY_OPENTELEMETRY__TRACES__ENABLE: 'true', TRIBUTARY_OPENTELEMETRY__EXPORTER__ENDPOINT: endpoint } });
});
after(async () => {
  await b?.stop();
  await receiver.stop();
});

it('CONNECT and PUBLISH → durable append → deliver spans, under the publisher traceparent', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = '00f067aa0ba902b7';
  const sub = await connect(b.url, { clientId: 'trace-sub', protocolVersion: 5 });
  const pub = await connect(b.url, { clientId: 'trace-pub', protocolVersion: 5 });
  try {
    await sub.subscribeAsync('trace/t', { qos: 1 });
    const inbox = new Inbox(sub);
    await pub.publishAsync('trace/t', 'hello', { qos: 1, properties: { userProperties: { traceparent: `00-${traceId}-${parent}-01` } } });
    const [got] = await inbox.waitFor(1);
    const tp = got!.packet.properties?.userProperties?.traceparent;
    assert.equal(typeof tp, 'string');
    assert.match(tp as string, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`), 'the delivered PUBLISH carries the trace');

    await receiver.span((s) => s.name === 'CONNECT');
    const publish = await receiver.span((s) => s.name === 'PUBLISH trace/t');
    assert.equal(publish.traceId, traceId);
    assert.equal(publish.parentSpanId, parent, 'PUBLISH continues the publisher span');
    assert.equal((tp as string).split('-')[2], publish.spanId);
    const append = await receiver.span((s) => s.name === 'durable append' && s.traceId === traceId);
    assert.equal(append.parentSpanId, publish.spanId);
    const deliver = await receiver.span((s) => s.name === 'deliver trace/t');
    assert.equal(deliver.traceId, traceId);
    assert.equal(deliver.parentSpanId, publish.spanId);
    assert.ok(receiver.contentTypes.every((t) => t.startsWith('application/json')), `OTLP/HTTP JSON: ${receiver.contentTypes.join(',')}`);
  } finally {
    await end(pub);
    await end(sub);
  }
});

it('a PUBLISH without traceparent starts a trace of its own', async () => {
  const pub = await connect(b.url, { clientId: 'trace-pub2', protocolVersion: 5 });
  try {
    await pub.publishAsync('trace/root', 'x', { qos: 1 });
    const publish = await receiver.span((s) => s.name === 'PUBLISH trace/root');
    assert.equal(publish.parentSpanId ?? '', '');
  } finally {
    await end(pub);
  }
});
