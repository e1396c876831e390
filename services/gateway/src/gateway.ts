import { createServer as createHttpServer, Server as HttpServer } from 'node:http';
import { createServer, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { Bind, Logger, TributaryConfig } from '@tributary/common';
import { RC } from '@tributary/mqtt';
import type { Broker } from './broker/broker';
import { Connection } from './connection/connection';
import { TcpTransport, Transport, WsTransport } from './connection/transport';

export interface ListenerInfo {
  name: string;
  proto: 'tcp' | 'ws';
  host: string;
  port: number;
}

const TICK_MS = 1000;

/**
 * The connection gateway: MQTT listeners (TCP, WebSocket) and their connections. One ticker
 * checks every connection's deadlines once a second instead of a timer per connection.
 */
export class Gateway {
  private readonly connections = new Set<Connection>();
  private readonly servers: (Server | HttpServer)[] = [];
  private wss: WebSocketServer | undefined;
  private ticker: NodeJS.Timeout | undefined;
  readonly listeners: ListenerInfo[] = [];
  private accepting = true;

  constructor(
    private readonly config: TributaryConfig,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  async start(): Promise<void> {
    const l = this.config.listeners;
    if (l.tcp.default.enable) {
      const server = createServer({ noDelay: true }, (socket) => this.acceptTcp(socket, l.tcp.default.max_connections));
      await this.listen(server, 'tcp:default', 'tcp', l.tcp.default.bind);
    }
    if (l.ws.default.enable) {
      const http = createHttpServer((req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain' }).end(`MQTT over WebSocket: connect to ${l.ws.default.path}\n`);
      });
      this.wss = new WebSocketServer({
        server: http,
        path: l.ws.default.path,
        perMessageDeflate: false,
        maxPayload: this.config.mqtt.max_packet_size + 5,
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      });
      this.wss.on('connection', (ws, req) => {
        if (!this.accepting || this.connections.size >= l.ws.default.max_connections) return ws.terminate();
        const transport = new WsTransport(ws, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`);
        const conn = this.add(transport);
        ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => conn.data(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)));
        ws.on('close', () => conn.closed());
        ws.on('error', () => ws.terminate());
      });
      await this.listen(http, 'ws:default', 'ws', l.ws.default.bind);
    }
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  /** Stops accepting and closes every client (v5: DISCONNECT 0x8B, server shutting down). */
  async stop(): Promise<void> {
    this.accepting = false;
    if (this.ticker) clearInterval(this.ticker);
    for (const c of [...this.connections]) c.channel.close(RC.SERVER_SHUTTING_DOWN);
    this.wss?.close();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            (s as HttpServer).closeAllConnections?.();
          }),
      ),
    );
  }

  private acceptTcp(socket: Socket, max: number): void {
    if (!this.accepting || this.connections.size >= max) {
      socket.destroy();
      return;
    }
    const conn = this.add(new TcpTransport(socket));
    socket.on('data', (chunk: Buffer) => conn.data(chunk));
    socket.on('close', () => conn.closed());
    socket.on('error', () => socket.destroy());
  }

  private add(transport: Transport): Connection {
    const conn = new Connection(transport, this.broker, this.config, this.log, (c) => this.connections.delete(c));
    this.connections.add(conn);
    return conn;
  }

  private tick(): void {
    const now = Date.now();
    const retry = this.config.mqtt.retry_interval;
    const retryBefore = retry > 0 ? now - retry : 0;
    for (const c of this.connections) c.tick(now, retryBefore);
  }

  private listen(server: Server | HttpServer, name: string, proto: 'tcp' | 'ws', bind: Bind): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`listener ${name} cannot bind ${bind.host}:${bind.port}: ${err.message}`));
      server.once('error', onError);
      server.listen(bind.port, bind.host, () => {
        server.off('error', onError);
        const addr = server.address() as AddressInfo;
        this.listeners.push({ name, proto, host: addr.address, port: addr.port });
        this.servers.push(server);
        this.log.info({ listener: name, bind: `${addr.address}:${addr.port}` }, `listening for MQTT over ${proto}`);
        resolve();
      });
    });
  }
}
