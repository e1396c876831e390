import { createServer as createHttpServer, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import { resolve } from 'node:path';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { createServer, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { StartupError, type Bind, type Logger } from '@tributary/common';
import type { GatewayConfig } from './config';
import { RC } from '@tributary/mqtt';
import type { Broker } from './broker/broker';
import { loadPskFile, pskServerOptions } from './connection/psk';
import { Connection, ConnectionRates } from './connection/connection';
import { bucketFor, TokenBucket } from './connection/rate-limit';
import { tlsServerOptions } from './connection/tls';
import { TcpTransport, Transport, WsTransport } from './connection/transport';

export interface ListenerInfo {
  name: string;
  proto: 'tcp' | 'ssl' | 'ws' | 'wss';
  host: string;
  port: number;
}

const TICK_MS = 1000;

/** One listener's max_conn_rate and the episode of refusals it is in. */
interface ConnRate {
  bucket: TokenBucket;
  /** The key as configured, for the log. */
  text: string;
  /** Connections refused since the rate was last exceeded; 0 = not in an episode. */
  refused: number;
}

type ListenerType = 'tcp' | 'ssl' | 'ws' | 'wss';

/**
 * The connection gateway: MQTT listeners (TCP, WebSocket) and their connections. One ticker
 * checks every connection's deadlines once a second instead of a timer per connection.
 */
export class Gateway {
  private readonly connections = new Set<Connection>();
  private readonly perListener = new Map<string, number>();
  private readonly servers: (Server | HttpServer | HttpsServer)[] = [];
  private readonly wss: WebSocketServer[] = [];
  private ticker: NodeJS.Timeout | undefined;
  readonly listeners: ListenerInfo[] = [];
  private accepting = true;
  /** max_conn_rate per listener name; absent = infinite. */
  private readonly connRates = new Map<string, ConnRate>();
  /** messages_rate and bytes_rate per listener name. */
  private readonly clientRates = new Map<string, ConnectionRates>();

  constructor(
    private readonly config: GatewayConfig,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Connections of one listener ("tcp:default"), for GET /listeners. */
  listenerConnections(name: string): number {
    return this.perListener.get(name) ?? 0;
  }

  /** The listener keys (`listeners.<type>.default`), for GET /listeners. */
  get listenerConfig(): GatewayConfig['listeners'] {
    return this.config.listeners;
  }

  async start(): Promise<void> {
    const l = this.config.listeners;
    for (const type of ['tcp', 'ssl', 'ws', 'wss'] as const) this.rates(type);
    if (l.tcp.default.enable) {
      const server = createServer({ noDelay: true }, (socket) => {
        if (!this.rateAdmits('tcp:default')) return socket.destroy();
        this.acceptTcp(socket, 'tcp:default', l.tcp.default.max_connections);
      });
      await this.listen(server, 'tcp:default', 'tcp', l.tcp.default.bind);
    }
    if (l.ssl.default.enable) {
      const ssl = l.ssl.default;
      let options = await tlsServerOptions('listeners.ssl.default', ssl.ssl_options, this.dataDir, this.log);
      const psk = this.config.psk_authentication;
      if (psk.enable) {
        const keys = await loadPskFile(psk);
        options = pskServerOptions(keys, options, 'listeners.ssl.default');
        this.log.info({ identities: keys.size }, 'TLS-PSK enabled on the ssl listener (TLS 1.2)');
      }
      const server = createTlsServer(options, (socket) => {
        if (this.peerCertRejected(socket, ssl.ssl_options.verify)) return socket.destroy();
        this.acceptTcp(socket, 'ssl:default', ssl.max_connections);
      });
      // Handshake garbage and plain MQTT on the TLS port end that socket only.
      server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'));
      this.limitConnRate(server, 'ssl:default');
      await this.listen(server, 'ssl:default', 'ssl', ssl.bind);
    }
    if (l.ws.default.enable) {
      const ws = l.ws.default;
      await this.startWebSocket(createHttpServer(), 'ws:default', 'ws', ws.bind, ws.path, ws.max_connections);
    }
    if (l.wss.default.enable) {
      const wss = l.wss.default;
      const options = await tlsServerOptions('listeners.wss.default', wss.ssl_options, this.dataDir, this.log);
      const server = createHttpsServer(options);
      server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'));
      // As on the SSL listener: with verify_peer a client certificate that does not verify is refused
      // (Node only enforces that itself when fail_if_no_peer_cert makes rejectUnauthorized true).
      server.on('secureConnection', (socket: TLSSocket) => {
        if (this.peerCertRejected(socket, wss.ssl_options.verify)) socket.destroy();
      });
      await this.startWebSocket(server, 'wss:default', 'wss', wss.bind, wss.path, wss.max_connections);
    }
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  private get dataDir(): string {
    return resolve(this.config.node.data_dir);
  }

  /** With verify_peer, a client certificate that does not verify closes the connection. */
  private peerCertRejected(socket: TLSSocket, verify: string): boolean {
    if (verify !== 'verify_peer' || socket.authorized) return false;
    const cert = socket.getPeerCertificate();
    return cert !== null && Object.keys(cert).length > 0;
  }

  /** MQTT over WebSocket (subprotocols mqtt and mqttv3.1) on an HTTP or HTTPS server. */
  private async startWebSocket(http: HttpServer | HttpsServer, name: string, proto: ListenerInfo['proto'], bind: Bind, path: string, max: number): Promise<void> {
    http.on('request', (_req, res: ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end(`MQTT over WebSocket: connect to ${path}\n`);
    });
    const wss = new WebSocketServer({
      server: http,
      path,
      perMessageDeflate: false,
      maxPayload: this.config.mqtt.max_packet_size + 5,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    this.wss.push(wss);
    // ws re-emits the HTTP server's errors (EADDRINUSE at start-up) on the WebSocketServer;
    // without a listener that is an uncaught exception. listen() reports them, naming the listener.
    wss.on('error', () => undefined);
    this.limitConnRate(http, name);
    wss.on('connection', (ws, req) => {
      if (!this.admit(name, max)) return ws.terminate();
      const transport = new WsTransport(ws, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`, req.socket);
      const conn = this.add(transport, name);
      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => conn.data(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)));
      ws.on('close', () => conn.closed());
      ws.on('error', () => ws.terminate());
    });
    await this.listen(http, name, proto, bind);
  }

  /** Stops accepting and closes every client (v5: DISCONNECT 0x8B, server shutting down). */
  async stop(): Promise<void> {
    this.accepting = false;
    if (this.ticker) clearInterval(this.ticker);
    for (const c of [...this.connections]) c.channel.close(RC.SERVER_SHUTTING_DOWN);
    for (const w of this.wss) w.close();
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

  private acceptTcp(socket: Socket, listener: string, max: number): void {
    if (!this.admit(listener, max)) {
      socket.destroy();
      return;
    }
    const conn = this.add(new TcpTransport(socket), listener);
    socket.on('data', (chunk: Buffer) => conn.data(chunk));
    socket.on('close', () => conn.closed());
    socket.on('error', () => socket.destroy());
  }

  /** Reads a listener's rate keys once. */
  private rates(type: ListenerType): void {
    const d = this.config.listeners[type].default;
    const name = `${type}:default`;
    const bucket = bucketFor(d.max_conn_rate);
    if (bucket) this.connRates.set(name, { bucket, text: d.max_conn_rate.text, refused: 0 });
    if (!d.messages_rate.infinite || !d.bytes_rate.infinite) this.clientRates.set(name, { messages: d.messages_rate, bytes: d.bytes_rate });
  }

  /**
   * max_conn_rate for a TLS or HTTP server: checked on the raw TCP connection, before the TLS
   * handshake or WebSocket upgrade it would cost.
   */
  private limitConnRate(server: Server | HttpServer | HttpsServer, name: string): void {
    if (!this.connRates.has(name)) return;
    server.on('connection', (socket: Socket) => {
      if (!this.rateAdmits(name)) socket.destroy();
    });
  }

  /**
   * max_conn_rate: a token per new connection. Over the rate the socket is closed at once (EMQX
   * stops accepting for a while instead; closing keeps the accept queue short and the refusal
   * visible to the client). Counted per refusal, logged once per episode.
   */
  private rateAdmits(name: string): boolean {
    const r = this.connRates.get(name);
    if (!r) return true;
    if (r.bucket.tryTake()) {
      if (r.refused > 0) this.log.info({ listener: name, refused: r.refused }, 'connection rate back under max_conn_rate');
      r.refused = 0;
      return true;
    }
    this.broker.metrics['listener.conn_rate_limited']++;
    if (r.refused++ === 0) this.log.warn({ listener: name, max_conn_rate: r.text }, 'max_conn_rate exceeded: closing new connections');
    return false;
  }

  /** `max_connections` counts the connections of one listener. */
  private admit(listener: string, max: number): boolean {
    return this.accepting && (this.perListener.get(listener) ?? 0) < max;
  }

  private add(transport: Transport, listener: string): Connection {
    const conn = new Connection(
      transport,
      listener,
      this.broker,
      this.config,
      this.log,
      (c) => {
        if (this.connections.delete(c)) this.perListener.set(listener, (this.perListener.get(listener) ?? 1) - 1);
      },
      this.clientRates.get(listener),
    );
    this.connections.add(conn);
    this.perListener.set(listener, (this.perListener.get(listener) ?? 0) + 1);
    return conn;
  }

  private tick(): void {
    const now = Date.now();
    const retry = this.config.mqtt.retry_interval;
    const retryBefore = retry > 0 ? now - retry : 0;
    for (const c of this.connections) c.tick(now, retryBefore);
  }

  private listen(server: Server | HttpServer | HttpsServer, name: string, proto: ListenerInfo['proto'], bind: Bind): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new StartupError('LISTENER_BIND_FAILED', `listener ${name} cannot bind ${bind.host}:${bind.port}: ${err.message}`, { cause: err }));
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
