import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { httpErrorOf, StartupError, TributaryError, type Bind, type Logger } from '@tributary/common';
import { ApiKeys } from './api-keys';
import { addDashboard, DEFAULT_DASHBOARD_DIR } from './dashboard';
import { ApiError, ApiRoute } from './routes';

/** What the API reads from the running node. */
export interface NodeStatusSource {
  readonly nodeName: string;
  readonly version: string;
  /** True once every service started and until shutdown begins. */
  readonly running: boolean;
  stats(): Record<string, number>;
  metrics(): Record<string, number>;
}

export interface ApiServerOptions {
  /** Keys accepted in `Authorization: Basic`; every route but /status needs one. */
  apiKeys?: ApiKeys;
  /** What packages add under /api/v5 (routes.ts). */
  routes?: readonly ApiRoute[];
  /** The built dashboard served at / (default services/dashboard/dist; null: no dashboard). */
  dashboardDir?: string | null;
}

const BASE = '/api/v5';

/**
 * The HTTP API, EMQX's /api/v5 shapes, and the built dashboard at / (dashboard.ts). /status answers 200 while the node runs and 503
 * otherwise, in EMQX's text form or as JSON with ?format=json, without authentication. Every
 * other route needs an API key (HTTP Basic); packages add routes (routes.ts). Errors are
 * `{code, message}` with the status of the error tree; unknown paths 404 NOT_FOUND.
 */
export class ApiServer {
  private app: FastifyInstance | undefined;
  address: { host: string; port: number } | undefined;
  private readonly apiKeys: ApiKeys;
  private readonly routes: readonly ApiRoute[];
  private readonly dashboardDir: string | null;

  constructor(
    private readonly bind: Bind,
    private readonly node: NodeStatusSource,
    private readonly log: Logger,
    opts: ApiServerOptions = {},
  ) {
    this.apiKeys = opts.apiKeys ?? new ApiKeys();
    this.routes = opts.routes ?? [];
    this.dashboardDir = opts.dashboardDir === undefined ? DEFAULT_DASHBOARD_DIR : opts.dashboardDir;
  }

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
    const dashboard = this.dashboardDir === null ? undefined : await addDashboard(app, this.dashboardDir);
    this.addRoutes(app, dashboard);
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

  private addRoutes(app: FastifyInstance, dashboard?: (req: FastifyRequest, reply: FastifyReply) => boolean): void {
    app.setNotFoundHandler((req, reply) => {
      if (dashboard?.(req, reply)) return;
      void reply.code(404).send({ code: 'NOT_FOUND', message: 'Request Path Not Found' });
    });
    app.setErrorHandler((err, _req, reply) => this.fail(reply, err));
    for (const route of this.routes) {
      app.route({
        method: route.method,
        url: BASE + route.path,
        preHandler: (req, reply, done) => (this.authorized(req, reply) ? done() : undefined),
        handler: async (req, reply) => {
          const out = await route.handler({ params: req.params as Record<string, string>, query: req.query as Record<string, string | undefined>, body: req.body });
          reply.code(out.status ?? (out.body === undefined ? 204 : 200));
          return out.body === undefined ? reply.send() : out.body;
        },
      });
    }
  }

  /** HTTP Basic with an API key; a 401 says what is missing (EMQX's codes). */
  private authorized(req: FastifyRequest, reply: FastifyReply): boolean {
    const verdict = this.apiKeys.check(req.headers.authorization);
    if (verdict === 'ok') return true;
    reply.code(401).header('www-authenticate', 'Basic realm="tributary"');
    if (verdict === 'bad') reply.send({ code: 'BAD_API_KEY_OR_SECRET', message: 'Check api_key/api_secret' });
    else if (this.apiKeys.size === 0) reply.send({ code: 'AUTHORIZATION_HEADER_ERROR', message: 'no API key is configured: set api_key.bootstrap_file (lines key:secret) and send Authorization: Basic base64(key:secret)' });
    else reply.send({ code: 'AUTHORIZATION_HEADER_ERROR', message: 'send an API key: Authorization: Basic base64(api_key:api_secret)' });
    return false;
  }

  private fail(reply: FastifyReply, err: unknown): void {
    if (err instanceof ApiError) return void reply.code(err.status).send({ code: err.code, message: err.message });
    const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
    // Fastify's own: a body that is not JSON, a wrong content type.
    if (!(err instanceof TributaryError) && typeof e.statusCode === 'number' && e.statusCode < 500) {
      const code = e.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'BAD_REQUEST';
      return void reply.code(e.statusCode).send({ code, message: e.message ?? code });
    }
    const answer = httpErrorOf(err);
    if (answer.status >= 500) this.log.error({ err }, 'HTTP API request failed');
    reply.code(answer.status).send(answer.body);
  }
}
export * from './config';
export * from './api-keys';
export * from './routes';
export * from './dashboard';
