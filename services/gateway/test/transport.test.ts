import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { TcpTransport } from '../src/connection/transport';

it('a tick of writes past the coalescing limit reaches the peer byte for byte, small packets copied together, large ones as they are', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect(port, '127.0.0.1');
  const [socket] = await accepted;
  try {
    const transport = new TcpTransport(socket);
    const parts: Buffer[] = [];
    // 3000 small packets (well past 64 KiB), with 20 KiB ones in between and at the end.
    for (let i = 0; i < 3000; i++) {
      parts.push(Buffer.from(`packet ${i};`.padEnd(40 + (i % 17), '.')));
      if (i % 700 === 0) parts.push(Buffer.alloc(20 * 1024, i % 251));
    }
    parts.push(Buffer.alloc(20 * 1024, 7));
    const want = Buffer.concat(parts);
    const received: Buffer[] = [];
    let bytes = 0;
    const all = new Promise<void>((resolve) =>
      client.on('data', (d: Buffer) => {
        received.push(d);
        bytes += d.length;
        if (bytes >= want.length) resolve();
      }),
    );
    // The stream entries the flush makes: each is a buffer the socket holds until the kernel takes it.
    const entries: number[] = [];
    const write = socket.write.bind(socket) as (b: Buffer) => boolean;
    socket.write = ((b: Buffer) => (entries.push(b.length), write(b))) as typeof socket.write;
    for (const p of parts) transport.write(p);
    assert.equal(transport.writes, 0, 'nothing written before the end of the tick');
    await all;
    assert.equal(transport.writes, 1, 'one flush');
    assert.ok(Buffer.concat(received).equals(want));
    const large = parts.filter((p) => p.length >= 16 * 1024).length;
    assert.ok(entries.every((n) => n <= 64 * 1024 || n === 20 * 1024), `no entry beyond 64 KiB: ${entries.join(' ')}`);
    assert.equal(entries.filter((n) => n === 20 * 1024).length, large, 'the 20 KiB packets go as they are');
    assert.ok(entries.length <= large * 2 + Math.ceil(want.length / (64 * 1024)) + 1, `small packets copied together, not one entry each: ${entries.length} entries`);
  } finally {
    client.destroy();
    socket.destroy();
    server.close();
  }
});
