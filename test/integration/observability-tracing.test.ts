// OpenTelemetry traces from a real broker to an OTLP/HTTP receiver written here: spans for a
// CONNECT and for PUBLISH → durable append → delivery, continuing the publisher's traceparent,
// and the traceparent user property on the delivered v5 PUBLISH.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { BrokerProcess, startBroker } from '../helpers/broker';
import { connect, end, Inbox } from '../helpers/clients';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

const spans: OtlpSpan[] = [];
let waiters: (() => void)[] = [];
let receiver: Server;
let b: BrokerProcess;
const types: string[] = [];

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      types.push(String(req.headers['content-type']));
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const doc = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        for (const w of waiters) w();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as AddressInfo).port;
  b = await startBroker({ env: { TRIBUTARY_OPENTELEMETRY__TRACES__ENABLE: 'true', TRIBUTARY_OPENTELEMETRY__EXPORTER__ENDPOINT: `http://127.0.0.1:${port}` } });
});
after(async () => {
  await b?.stop();
  await new Promise((r) => receiver.close(r));
});

/** Resolves once a span satisfying `ok` arrived. */
function span(ok: (s: OtlpSpan) => boolean, ms = 15_000): Promise<OtlpSpan> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const s = spans.find(ok);
      if (s) resolve(s);
      return !!s;
    };
    if (check()) return;
    const t = setTimeout(() => reject(new Error(`no such span within ${ms} ms; got ${JSON.stringify(spans.map((s) => s.name))}`)), ms);
    waiters.push(() => check() && (clearTimeout(t), (waiters = waiters.filter((w) => w !== check))));
  });
}

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

    await span((s) => s.name === 'CONNECT');
    const publish = await span((s) => s.name === 'PUBLISH trace/t');
    assert.equal(publish.traceId, traceId);
    assert.equal(publish.parentSpanId, parent, 'PUBLISH continues the publisher span');
    assert.equal((tp as string).split('-')[2], publish.spanId);
    const append = await span((s) => s.name === 'durable append' && s.traceId === traceId);
    assert.equal(append.parentSpanId, publish.spanId);
    const deliver = await span((s) => s.name === 'deliver trace/t');
    assert.equal(deliver.traceId, traceId);
    assert.equal(deliver.parentSpanId, publish.spanId);
    assert.ok(types.every((t) => t.startsWith('application/json')), `OTLP/HTTP JSON: ${types.join(',')}`);
  } finally {
    await end(pub);
    await end(sub);
  }
});
