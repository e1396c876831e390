import Fastify, { FastifyInstance } from 'fastify';
import { StartupError, type Bind, type Logger } from '@tributary/common';

/** What the API reads from the running node. */
export interface NodeStatusSource {
  readonly nodeName: string;
  readonly version: string;
  /** True once every service started and until shutdown begins. */
  readonly running: boolean;
  stats(): Record<string, number>;
  metrics(): Record<string, number>;
}

/**
 * The HTTP API (EMQX's /api/v5 shapes as it grows; /status for now). /status answers 200 while
 * the node runs and 503 otherwise, in EMQX's text form or as JSON with ?format=json.
 */
export class ApiServer {
  private app: FastifyInstance | undefined;
  address: { host: string; port: number } | undefined;

  constructor(
    private readonly bind: Bind,
    private readonly node: NodeStatusSource,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const app = Fastify({ logger: false });
    const status = (query: { format?: string }, reply: { code(n: number): unknown; type(t: string): unknown }): unknown => {
      const running = this.node.running;
      reply.code(running ? 200 : 503);
      if (query.format === 'json') {
        return { node: this.node.nodeName, status: running ? 'running' : 'not_running', version: this.node.version, stats: this.node.stats(), metrics: this.node.metrics() };
      }
      reply.type('text/plain');
      return `Node ${this.node.nodeName} is ${running ? 'started' : 'stopping'}\ntributary is ${running ? 'running' : 'not_running'}\n`;
    };
    app.get<{ Querystring: { format?: string } }>('/status', (req, reply) => status(req.query, reply));
    app.get<{ Querystring: { format?: string } }>('/api/v5/status', (req, reply) => status(req.query, reply));
    try {
      await app.listen({ host: this.bind.host, port: this.bind.port });
    } catch (err) {
      throw new StartupError('LISTENER_BIND_FAILED', `listener dashboard:http cannot bind ${this.bind.host}:${this.bind.port}: ${(err as Error).message}`, { cause: err });
    }
    const addr = app.server.address();
    if (addr && typeof addr === 'object') this.address = { host: addr.address, port: addr.port };
    this.log.info({ listener: 'dashboard:http', bind: `${this.address?.host}:${this.address?.port}` }, 'HTTP API listening');
    this.app = app;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    this.app = undefined;
  }
}
