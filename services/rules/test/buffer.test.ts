import { strict as assert } from 'node:assert';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { MemoryBackbone } from '@tributary/backbone';
import { silentLogger } from '@tributary/common';
import { decodeRequest, encodeRequest, SinkBuffer } from '../src/buffer';
import { SinkMetrics } from '../src/metrics';
import { jsonEncode } from '@tributary/rulesql';
import { sinkOn } from './helpers/sinks';

describe('sink buffer records', () => {
  it('a request round-trips, bytes as bytes and text as text', () => {
    const bytes = Buffer.from([0xff, 0x00, 0x80]);
    const back = decodeRequest(encodeRequest({ payload: bytes, topic: 't/1', n: 2, nested: { b: Buffer.from('hi') }, list: [1, 'x'] }));
    assert.ok(Buffer.isBuffer(back.payload));
    assert.deepEqual(back.payload, bytes);
    assert.deepEqual((back.nested as { b: Buffer }).b, Buffer.from('hi'));
    assert.equal(back.topic, 't/1');
    assert.deepEqual(back.list, [1, 'x']);
  });

  it('JSON of a value shows Buffers as their text and undefined as null', () => {
    assert.equal(jsonEncode({ a: Buffer.from('hé'), b: undefined }), '{"a":"hé","b":null}');
  });
});

/** A webhook server written here: answers each request after `delayMs`, or 503 while `down`; counts requests in flight at once. */
async function slowHook(delayMs: number): Promise<{ port: number; seen: number[]; maxInFlight: () => number; setDown(d: boolean): void; attempts: () => number; stop(): Promise<void> }> {
  const seen: number[] = [];
  let inFlight = 0;
  let max = 0;
  let down = false;
  let attempts = 0;
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      attempts++;
      if (down) return void res.writeHead(503).end('down');
      inFlight++;
      max = Math.max(max, inFlight);
      setTimeout(() => {
        inFlight--;
        seen.push((JSON.parse(body) as { n: number }).n);
        res.writeHead(200).end('ok');
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as AddressInfo).port,
    seen,
    maxInFlight: () => max,
    attempts: () => attempts,
    setDown: (d) => (down = d),
    stop: () => new Promise<void>((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('sink buffer delivery', () => {
  const started: { stop(): Promise<void> }[] = [];
  after(async () => {
    for (const s of started.reverse()) await s.stop();
  });

  async function bufferTo(port: number, inflightWindow: number, name: string): Promise<SinkBuffer> {
    const { connector, sink } = await sinkOn('http', { url: `http://127.0.0.1:${port}/`, pool_size: 8 }, {}, name);
    started.push(connector);
    const backbone = new MemoryBackbone();
    await backbone.start();
    started.push(backbone);
    const buffer = new SinkBuffer(backbone, sink, { batchSize: 1, inflightWindow, requestTtlMs: 0, maxBufferMessages: 1_000_000, maxBufferBytes: 1 << 30, maxRetryDelayMs: 200 }, new SinkMetrics(), silentLogger);
    await buffer.start();
    started.push(buffer);
    return buffer;
  }

  it('inflight_window > 1 keeps several requests in flight (up to the pool), every one delivered once', async () => {
    const hook = await slowHook(20);
    started.push(hook);
    const buffer = await bufferTo(hook.port, 100, 'wide');
    await buffer.enqueue(Array.from({ length: 200 }, (_, n) => ({ n })));
    await until(() => hook.seen.length === 200, `200 requests delivered (got ${hook.seen.length})`);
    assert.ok(hook.maxInFlight() > 1, `requests overlapped (max in flight ${hook.maxInFlight()})`);
    assert.ok(hook.maxInFlight() <= 8, `no more than pool_size at once (max ${hook.maxInFlight()})`);
    assert.deepEqual([...hook.seen].sort((a, b) => a - b), Array.from({ length: 200 }, (_, n) => n));
    // The server counts a request before its answer reaches the sink.
    await until(() => buffer.metrics.success === 200, 'every answer counted');
    await until(() => buffer.metrics.inflight === 0 && buffer.metrics.queuing === 0, 'nothing left in flight or queued');
  });

  it('inflight_window 1 sends one request at a time, in order', async () => {
    const hook = await slowHook(2);
    started.push(hook);
    const buffer = await bufferTo(hook.port, 1, 'narrow');
    await buffer.enqueue(Array.from({ length: 50 }, (_, n) => ({ n })));
    await until(() => hook.seen.length === 50, '50 requests delivered');
    assert.equal(hook.maxInFlight(), 1);
    assert.deepEqual(hook.seen, Array.from({ length: 50 }, (_, n) => n));
  });

  it('while the sink is down one batch probes it and the others wait; all go out once it is back', async () => {
    const hook = await slowHook(1);
    started.push(hook);
    hook.setDown(true);
    const buffer = await bufferTo(hook.port, 50, 'probe');
    await buffer.enqueue(Array.from({ length: 50 }, (_, n) => ({ n })));
    // Every batch tried once and failed; from then on one probe at a time (back-off capped at 200 ms by maxRetryDelayMs).
    await until(() => buffer.metrics.retried >= 50 && buffer.metrics.inflight === 0, 'every batch failed once');
    const before = hook.attempts();
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(hook.attempts() - before <= 5, `only the probe retries while down (${hook.attempts() - before} tries in 500 ms)`);
    hook.setDown(false);
    await until(() => hook.seen.length === 50, `all 50 delivered after the outage (got ${hook.seen.length})`);
    assert.deepEqual([...hook.seen].sort((a, b) => a - b), Array.from({ length: 50 }, (_, n) => n));
    await until(() => buffer.metrics.success === 50, 'every answer counted');
  });
});
