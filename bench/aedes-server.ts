/** Aedes on a plain TCP listener, run by the bench as a child process: node aedes-server.js <port>. */
import * as net from 'node:net';

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0) throw new Error('usage: aedes-server.js <port>');
  // aedes 1.x is ESM-only; a dynamic import() stays an import() in the CommonJS output.
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  // noDelay like the other brokers (mosquitto: set_tcp_nodelay), so latency is not Nagle's.
  const server = net.createServer({ noDelay: true }, (socket) => broker.handle(socket));
  server.listen(port, '127.0.0.1');
  const shutdown = (): void => {
    server.close();
    broker.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
