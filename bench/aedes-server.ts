/**
 * Aedes on a plain TCP listener, run by the bench as a child process: node aedes-server.js <port>
 * [<tls port> <cert.pem> <key.pem>] (the second form also listens for MQTT over TLS).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0) throw new Error('usage: aedes-server.js <port>');
  // aedes 1.x is ESM-only; a dynamic import() stays an import() in the CommonJS output.
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  // noDelay like the other brokers (mosquitto: set_tcp_nodelay), so latency is not Nagle's.
  const server = net.createServer({ noDelay: true }, (socket) => broker.handle(socket));
  server.listen(port, '127.0.0.1');
  let tlsServer: tls.Server | undefined;
  const [tlsPort, certFile, keyFile] = process.argv.slice(3);
  if (tlsPort && certFile && keyFile) {
    const options = { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), noDelay: true };
    tlsServer = tls.createServer(options, (socket) => broker.handle(socket));
    tlsServer.listen(Number(tlsPort), '127.0.0.1');
  }
  const shutdown = (): void => {
    server.close();
    tlsServer?.close();
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
