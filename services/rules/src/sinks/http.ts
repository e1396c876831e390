import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { ConfigProblem, duration, type Infer, int, oneOf } from '@tributary/common';
import { compileTemplate, type Template } from '../template';
import { jsonEncode, type ValueMap } from '@tributary/rulesql';
import { actionCommon, checkedString, connectorCommon, headerMap, required, sslFields, template, unused, withIgnored } from './fields';
import { BaseConnector, bytesOf, type ConnectorOptions, type ConnectorStatus, messageOf, rejected, type Sink, unavailable } from './types';

/** The connector's URL: http:// or https://, no placeholders (the action's path has them). */
function checkUrl(raw: string): ConfigProblem | undefined {
  try {
    const u = new URL(raw);
    return u.protocol === 'http:' || u.protocol === 'https:' ? undefined : new ConfigProblem(`expected an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  } catch {
    return new ConfigProblem(`not a URL: ${JSON.stringify(raw)}`);
  }
}

/** EMQX's default headers of an HTTP connector. */
const DEFAULT_HEADERS = { accept: 'application/json', 'cache-control': 'no-cache', connection: 'keep-alive', 'content-type': 'application/json', 'keep-alive': 'timeout=5' };

/** `connectors.http.<name>`. enable_pipelining is kept for EMQX configurations: Node's HTTP/1.1 client does not pipeline, so a connector has at most pool_size requests in flight. */
export const httpConnectorFields = withIgnored(
  {
    ...connectorCommon,
    url: required(checkedString('', 'The server: http://host[:port][/base path] or https://...; the action path is appended.', checkUrl, 'expected an http:// or https:// URL')),
    headers: headerMap(DEFAULT_HEADERS, 'Headers of every request (lower-cased names), added to the defaults (JSON accept and content-type, keep-alive); the action headers add to and override them.'),
    connect_timeout: duration(15_000, 'How long a TCP connect may take.', 1, 600_000),
    pool_size: int(8, 'Connections kept to the server at most.', 1, 1024),
    enable_pipelining: unused(int(100, 'EMQX: requests per connection in flight (here one: HTTP/1.1 without pipelining).', 1, 100_000)),
    pool_type: unused(oneOf(['random', 'hash'], 'random', 'EMQX: how a request picks a connection.')),
    ssl: sslFields,
  },
  ['request', 'retry_interval', 'max_retries'],
);

/** `actions.http.<name>.parameters`. */
export const httpActionParams = withIgnored(
  {
    method: oneOf(['post', 'put', 'get', 'delete'], 'post', 'The request method; get and delete send no body.'),
    path: template('', 'Appended to the connector URL (a template).'),
    headers: headerMap({}, 'Headers (templates) added to the connector headers.', { templates: true }),
    body: template('', 'The body (a template); empty: the whole data map as JSON.'),
    max_retries: int(2, 'Retries of a request whose connection failed or timed out.', 0, 100),
    request_timeout: duration(30_000, 'How long one request may take, connect to the last byte of the reply.', 1, 3_600_000),
  },
  [],
);

export type HttpConnectorSpec = { readonly type: 'http'; readonly name: string } & Infer<typeof httpConnectorFields>;
export type HttpActionParams = Infer<typeof httpActionParams>;
export type HttpActionSpec = { readonly type: 'http'; readonly name: string } & Infer<typeof actionCommon> & { readonly parameters: HttpActionParams };

/** What a server answered. */
interface HttpReply {
  status: number;
  /** The start of the body (for error messages). */
  head: string;
}

/** A request that failed before a reply: connection refused/reset, or a timeout. */
class TransportError extends Error {}

/** A request on a stopped connector (not retried). */
class StoppedError extends TransportError {}

const REPLY_HEAD_BYTES = 512;

/** Characters a header value cannot carry (CR, LF, controls, non-ASCII) are percent-encoded: a value cannot add a header. */
function headerValue(v: string): string {
  return /[^\t\x20-\x7e]/.test(v) ? v.replace(/[^\t\x20-\x7e]/gu, (c) => encodeURIComponent(c)) : v;
}

/** An HTTP connector: a keep-alive pool of pool_size connections to the URL's server. */
export class HttpConnector extends BaseConnector<HttpConnectorSpec> {
  readonly type = 'http';
  readonly base: URL;
  private agent: HttpAgent | undefined;

  constructor(spec: HttpConnectorSpec, opts: ConnectorOptions = {}) {
    super(spec, opts);
    this.base = new URL(spec.url);
  }

  private get secure(): boolean {
    return this.base.protocol === 'https:';
  }

  private get port(): number {
    return Number(this.base.port) || (this.secure ? 443 : 80);
  }

  async start(): Promise<void> {
    if (this.agent) return;
    const tls = this.secure ? (this.tls(this.base.hostname) ?? {}) : {};
    const agentOpts = { keepAlive: true, maxSockets: this.spec.pool_size, ...tls };
    this.agent = this.secure ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
    this.state = 'connecting';
    await this.healthCheck();
  }

  async stop(): Promise<void> {
    this.agent?.destroy();
    this.agent = undefined;
    this.state = 'disconnected';
  }

  /** A TCP connect to the server within connect_timeout (EMQX's check). */
  healthCheck(): Promise<ConnectorStatus> {
    if (!this.agent) return Promise.resolve('disconnected');
    return new Promise((resolve) => {
      const sock = netConnect({ host: this.base.hostname.replace(/^\[|\]$/g, ''), port: this.port });
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        sock.destroy();
        if (this.agent) this.state = ok ? 'connected' : 'disconnected';
        resolve(this.state);
      };
      const timer = setTimeout(() => done(false), this.spec.connect_timeout);
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
    });
  }

  /** One request. Rejects with a TransportError when no reply came (refused, reset, a timeout). */
  request(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number): Promise<HttpReply> {
    const agent = this.agent;
    if (!agent) return Promise.reject(new StoppedError('connector stopped'));
    return new Promise<HttpReply>((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      let settled = false;
      const finish = (err: Error | undefined, reply?: HttpReply): void => {
        if (settled) return;
        settled = true;
        clearTimeout(overall);
        if (err) {
          this.state = 'disconnected';
          reject(err);
        } else {
          this.state = 'connected';
          resolve(reply!);
        }
      };
      const req = send(url, { method, headers, agent }, (res: IncomingMessage) => {
        let head = '';
        res.on('data', (chunk: Buffer) => {
          if (head.length < REPLY_HEAD_BYTES) head += chunk.subarray(0, REPLY_HEAD_BYTES - head.length).toString('utf8');
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, head }));
        res.on('error', (err) => finish(new TransportError(`reply broken off: ${err.message}`)));
      });
      const overall = setTimeout(() => req.destroy(new TransportError(`no reply within ${timeoutMs} ms`)), timeoutMs);
      req.on('socket', (sock) => {
        if (!sock.connecting) return;
        const t = setTimeout(() => req.destroy(new TransportError(`connect took over ${this.spec.connect_timeout} ms`)), this.spec.connect_timeout);
        sock.once('connect', () => clearTimeout(t));
        sock.once('close', () => clearTimeout(t));
      });
      req.on('error', (err) => finish(err instanceof TransportError ? err : new TransportError(messageOf(err))));
      req.end(body);
    });
  }
}

/** One rendered request of an HTTP action. */
export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Absent for get and delete. */
  body?: string;
}

/** An HTTP action: one request per data map, sent in order; retries only requests that got no reply. */
export class HttpSink implements Sink {
  readonly id: string;
  private readonly path: Template;
  private readonly headers: [string, Template][];
  private readonly body: Template | undefined;
  private readonly method: string;

  constructor(
    readonly spec: HttpActionSpec,
    private readonly connector: HttpConnector,
  ) {
    this.id = `http:${spec.name}`;
    const p = spec.parameters;
    this.method = p.method.toUpperCase();
    this.path = compileTemplate(p.path);
    this.headers = Object.entries(p.headers).map(([k, v]) => [k, compileTemplate(v)]);
    this.body = p.body === '' ? undefined : compileTemplate(p.body);
  }

  private url(data: ValueMap): string {
    const base = this.connector.spec.url;
    const path = this.path.render(data);
    if (path === '') return base;
    if (path.startsWith('?')) return base + path;
    return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
  }

  private renderHeaders(data: ValueMap, bodyLength: number | undefined): Record<string, string> {
    // Configured connector headers add to EMQX's defaults (a JSON body keeps its content-type).
    const headers: Record<string, string> = { ...DEFAULT_HEADERS, ...this.connector.spec.headers };
    for (const [k, t] of this.headers) headers[k] = headerValue(t.render(data));
    if (bodyLength !== undefined) headers['content-length'] = String(bodyLength);
    return headers;
  }

  private bodyOf(data: ValueMap): Buffer | undefined {
    if (this.method === 'GET' || this.method === 'DELETE') return undefined;
    return this.body ? bytesOf(this.body, data) : Buffer.from(jsonEncode(data));
  }

  render(data: ValueMap): HttpRequest {
    const body = this.bodyOf(data);
    return { method: this.method, url: this.url(data), headers: this.renderHeaders(data, body?.length), ...(body ? { body: body.toString('utf8') } : {}) };
  }

  async send(batch: readonly ValueMap[]): Promise<void> {
    for (const data of batch) await this.sendOne(data);
  }

  private async sendOne(data: ValueMap): Promise<void> {
    const text = this.url(data);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw rejected(this.id, `the rendered URL ${JSON.stringify(text)} is not a URL`);
    }
    const body = this.bodyOf(data);
    const headers = this.renderHeaders(data, body?.length);
    const { max_retries: retries, request_timeout: timeout } = this.spec.parameters;
    for (let attempt = 0; ; attempt++) {
      let reply: HttpReply;
      try {
        reply = await this.connector.request(url, this.method, headers, body, timeout);
      } catch (err) {
        if (attempt < retries && !(err instanceof StoppedError)) continue;
        throw unavailable(this.id, `${this.method} ${url.origin}${url.pathname}: ${messageOf(err)}`, err);
      }
      const { status } = reply;
      if (status >= 200 && status < 300) return;
      const what = `${this.method} ${url.origin}${url.pathname} answered ${status}${reply.head ? `: ${reply.head.slice(0, 200)}` : ''}`;
      if (status === 429 || status >= 500) throw unavailable(this.id, what);
      throw rejected(this.id, what);
    }
  }
}
