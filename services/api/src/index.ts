import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { httpErrorOf, StartupError, TributaryError, type Bind, type Logger } from '@tributary/common';
import { ApiKeys, type KeyVerdict } from './api-keys';
import { Cluster, FORWARDED_HEADER, PEER_HEADER } from './cluster';
import { addDashboard, DEFAULT_DASHBOARD_DIR } from './dashboard';
import { DashboardUser, dashboardRoutes } from './dashboard-routes';
import { nodeRoutes } from './node-routes';
import type { NodeSnapshot } from './node-snapshots';
import { openApiDocument } from './openapi';
import { ApiError, ApiRoute } from './routes';
import { LazyValidator } from './validate';
import { TokenSigner } from './tokens';

/** What the API reads from the running node. */
export interface NodeStatusSource {
  readonly nodeName: string;
  readonly version: string;
  /** True once every service started and until shutdown begins. */
  readonly running: boolean;
  stats(): Record<string, number>;
  metrics(): Record<string, number>;
  /** The other processes of the installation (the `nodes` table, node-snapshots.ts); none on a single node. */
  peers?(): NodeSnapshot[];
}

export interface ApiServerOptions {
  /** Keys accepted in `Authorization: Basic`; every route but /status needs one. */
  apiKeys?: ApiKeys;
  /** What packages add under /api/v5 (routes.ts). */
  routes?: readonly ApiRoute[];
  /** The built dashboard served at / (default services/dashboard/dist; null: no dashboard). */
  dashboardDir?: string | null;
  /** The user of POST /login (default admin/public) and how long its tokens last (default 60 min). */
  dashboard?: DashboardUser & { tokenTtlMs: number };
  /** Scaled out: calls from the other processes (their `x-tributary-peer` secret) are accepted, answered for this process only. */
  cluster?: Cluster;
  /**
   * Scaled out: where a path under /api/v5 this process has no route for goes (cluster): to a
   * gateway (`tributary api`, which runs no broker), to a rules process (the rule engine's
   * routes on a process without the engine), or nowhere (404).
   */
  forward?: (path: string) => 'gateway' | 'rules' | undefined;
}

const BASE = '/api/v5';

/**
 * The HTTP API, EMQX's /api/v5 shapes, and the built dashboard at / (dashboard.ts). /status
 * answers 200 while the node runs and 503 otherwise, in EMQX's text form or as JSON with
 * ?format=json, without authentication. Every other route but /login needs an API key (HTTP
 * Basic) or a bearer token from /login (routes with auth 'none', e.g. Prometheus scraping, need
 * neither); packages add routes (routes.ts), and the node's own (login, API keys, stats, metrics,
 * nodes, the OpenAPI document) are added here. Errors are `{code, message}` with the status of the error
 * tree; a request failing a route's schema is 400 BAD_REQUEST; unknown paths 404 NOT_FOUND.
 */
export class ApiServer {
  private app: FastifyInstance | undefined;
  address: { host: string; port: number } | undefined;
  private readonly apiKeys: ApiKeys;
  private readonly routes: readonly ApiRoute[];
  private readonly dashboardDir: string | null;
  private readonly tokens: TokenSigner;
  private readonly dashboard: DashboardUser;
  private readonly cluster: Cluster | undefined;
  private readonly forwardTo: ((path: string) => 'gateway' | 'rules' | undefined) | undefined;

  constructor(
    private readonly bind: Bind,
    private readonly node: NodeStatusSource,
    private readonly log: Logger,
    opts: ApiServerOptions = {},
  ) {
    this.apiKeys = opts.apiKeys ?? new ApiKeys();
    this.dashboardDir = opts.dashboardDir === undefined ? DEFAULT_DASHBOARD_DIR : opts.dashboardDir;
    this.dashboard = { username: opts.dashboard?.username ?? 'admin', password: opts.dashboard?.password ?? 'public' };
    this.tokens = new TokenSigner(opts.dashboard?.tokenTtlMs ?? 3_600_000);
    this.cluster = opts.cluster;
    this.forwardTo = opts.forward;
    const own = [...dashboardRoutes(this.dashboard, this.tokens, this.apiKeys, node.version), ...nodeRoutes(node)];
    const all = [...own, ...(opts.routes ?? [])];
    const docs: ApiRoute = { method: 'GET', path: '/api-docs/swagger.json', summary: 'This document (OpenAPI 3.0)', auth: 'none', handler: () => ({ body: openApiDocument(this.routes, node.version, BASE) }) };
    this.routes = [...all, docs];
  }

  /** Every route served under /api/v5 (for the OpenAPI document and its test). */
  get routeList(): readonly ApiRoute[] {
    return this.routes;
  }

  /** The fastify instance once started (tests use inject()). */
  get fastify(): FastifyInstance | undefined {
    return this.app;
  }

  async start(): Promise<void> {
    if (this.dashboard.password === 'public') this.log.warn({ username: this.dashboard.username }, 'the dashboard user has the default password: set dashboard.default_password');
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
    const app404 = this.dashboardDir === null ? undefined : await addDashboard(app, this.dashboardDir);
    this.addRoutes(app, app404);
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

  private addRoutes(app: FastifyInstance, app404?: (req: FastifyRequest, reply: FastifyReply) => boolean): void {
    app.setNotFoundHandler((req, reply) => {
      const to = this.cluster && req.url.startsWith(`${BASE}/`) ? this.forwardTo?.(req.url.slice(BASE.length)) : undefined;
      // A peer's call is answered here only: it never travels on.
      if (to && req.headers[PEER_HEADER] === undefined) return this.forward(req, reply, to);
      if (app404?.(req, reply)) return;
      void reply.code(404).send({ code: 'NOT_FOUND', message: 'Request Path Not Found' });
    });
    app.setErrorHandler((err, _req, reply) => this.fail(reply, err));
    for (const route of this.routes) {
      // Validated here, compiled on first use (validate.ts), not by fastify at start.
      const query = route.schema?.query ? new LazyValidator(route.schema.query, 'querystring') : undefined;
      const body = route.schema?.body ? new LazyValidator(route.schema.body, 'body') : undefined;
      app.route({
        method: route.method,
        url: BASE + route.path,
        // Authentication before validation: an anonymous caller learns nothing of the shapes.
        onRequest: (req, reply, done) => {
          if (route.auth === 'none') return done();
          const ok = this.authorized(req, reply, route.auth ?? 'any');
          if (ok === true) return done();
          if (ok !== false) ok.then((yes) => (yes ? done() : undefined), done);
        },
        handler: async (req, reply) => {
          const problem = query?.problem((req.query ??= {})) ?? body?.problem(req.body);
          if (problem) throw new ApiError(400, 'BAD_REQUEST', problem);
          const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
          // A peer's own call is answered for this process; a client's request it forwarded, for the installation.
          const peer = (this.cluster?.accepts(req.headers[PEER_HEADER]) ?? false) && req.headers[FORWARDED_HEADER] === undefined;
          const out = await route.handler({ params: req.params as Record<string, string>, query: (req.query ?? {}) as Record<string, string | undefined>, body: req.body, token: bearer?.[1], peer });
          reply.code(out.status ?? (out.body === undefined ? 204 : 200));
          if (out.contentType) reply.type(out.contentType);
          return out.body === undefined ? reply.send() : out.body;
        },
      });
    }
  }

  /**
   * HTTP Basic with an API key, a bearer token from /login, or (scaled out) another process's
   * call with this process's secret; false once a 401 that says what is wrong (EMQX's codes) was
   * sent. A promise when a stored API key's secret is checked for the first time (scrypt).
   */
  private authorized(req: FastifyRequest, reply: FastifyReply, auth: 'any' | 'bearer' | 'peer'): boolean | Promise<boolean> {
    const peer = req.headers[PEER_HEADER];
    if (peer !== undefined || auth === 'peer') {
      if (this.cluster?.accepts(peer)) return true;
      reply.code(401).send({ code: 'BAD_API_KEY_OR_SECRET', message: 'not a call from a node of this installation' });
      return false;
    }
    const header = req.headers.authorization;
    const bearer = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (bearer) {
      const v = this.tokens.verify(bearer[1]!);
      if (v.ok) return true;
      reply.code(401).header('www-authenticate', 'Bearer realm="tributary"');
      reply.send({ code: v.code, message: v.code === 'TOKEN_TIME_OUT' ? 'token expired or logged out: POST /login again' : 'the bearer token is not one this node issued' });
      return false;
    }
    if (auth === 'bearer' && /^Basic\s/i.test(header ?? '')) {
      reply.code(401).send({ code: 'API_KEY_NOT_ALLOW', message: 'this route takes a bearer token from POST /login, not an API key' });
      return false;
    }
    const verdict = this.apiKeys.check(header);
    return typeof verdict === 'string' ? this.keyVerdict(verdict, reply) : verdict.then((v) => this.keyVerdict(v, reply));
  }

  private keyVerdict(verdict: KeyVerdict, reply: FastifyReply): boolean {
    if (verdict === 'ok') return true;
    reply.code(401).header('www-authenticate', 'Basic realm="tributary"');
    if (verdict === 'bad') reply.send({ code: 'BAD_API_KEY_OR_SECRET', message: 'Check api_key/api_secret' });
    else if (this.apiKeys.size === 0) reply.send({ code: 'AUTHORIZATION_HEADER_ERROR', message: 'no API key is configured: POST /login for a bearer token, or set api_key.bootstrap_file (lines key:secret) and send Authorization: Basic base64(key:secret)' });
    else reply.send({ code: 'AUTHORIZATION_HEADER_ERROR', message: 'send an API key (Authorization: Basic base64(api_key:api_secret)) or a token from POST /login (Authorization: Bearer <token>)' });
    return false;
  }

  /** A path this process has no route for, answered by a gateway or a rules process (opts.forward), or 503 when none runs. */
  private async forward(req: FastifyRequest, reply: FastifyReply, to: 'gateway' | 'rules'): Promise<FastifyReply> {
    if (!(await this.authorized(req, reply, 'any'))) return reply;
    const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : req.body;
    const cluster = this.cluster!;
    try {
      const out = await cluster.any(req.method, req.url.slice(BASE.length), { body, forwarded: true }, to === 'rules' ? cluster.ruleEngines() : cluster.brokers(), to === 'rules' ? 'rules process' : 'gateway');
      if (out.contentType) reply.type(out.contentType);
      return reply.code(out.status).send(out.body);
    } catch (err) {
      this.fail(reply, err);
      return reply;
    }
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
export * from './node-snapshots';
export * from './cluster';
export * from './dashboard';
export * from './tokens';
export { openApiDocument } from './openapi';
