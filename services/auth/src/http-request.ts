import { Agent as HttpAgent, request as httpRequest, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { ConfigProblem, duration, int, Logger } from '@tributary/common';
import { checkPlaceholders, render } from './template';

/**
 * The request of the HTTP authenticator and the HTTP authorization source, EMQX's fields:
 * `method`, `url`, `headers`, `body` (a template whose string values may hold placeholders),
 * `request_timeout`, `pool_size`.
 */
export interface HttpRequestConfig {
  method: 'get' | 'post';
  url: string;
  /** Lower-case names; values are templates (placeholders allowed). */
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** The whole request, connect to the last byte of the reply, in ms. */
  requestTimeout: number;
  /** Connections kept open to the server at most. */
  poolSize: number;
}

/** What the server answered. */
export interface HttpReply {
  status: number;
  body: Buffer;
}

/** A reply larger than this is not read (a server is not allowed to fill the broker's memory). */
const MAX_REPLY_BYTES = 1024 * 1024;

const FIELDS = ['method', 'url', 'headers', 'body', 'request_timeout', 'pool_size', 'connect_timeout', 'enable_pipelining', 'ssl'];
const requestTimeout = duration(5000, 'request_timeout', 1, 600_000);
const poolSize = int(8, 'pool_size', 1, 1024);

/**
 * Validates the request fields of an HTTP authenticator or source; `placeholders` are the names
 * its templates may use. `connect_timeout` and `enable_pipelining` are accepted for EMQX
 * configurations and unused (request_timeout bounds the whole request); `ssl` only as disabled:
 * an https URL verifies the server against the system's CAs.
 */
export function parseHttpRequest(raw: Record<string, unknown>, placeholders: readonly string[]): HttpRequestConfig | ConfigProblem {
  const unknown = Object.keys(raw).find((k) => !FIELDS.includes(k));
  if (unknown !== undefined) return new ConfigProblem(`unknown field "${unknown}" (known: ${FIELDS.join(', ')})`);
  const method = raw.method ?? 'post';
  if (method !== 'get' && method !== 'post') return new ConfigProblem('field "method" must be get or post');
  if (typeof raw.url !== 'string') return new ConfigProblem('field "url" is required (http:// or https://)');
  const url = raw.url;
  const urlProblem = checkPlaceholders(url, placeholders, 'url');
  if (urlProblem) return urlProblem;
  try {
    const u = new URL(render(url, Object.fromEntries(placeholders.map((p) => [p, 'x']))));
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return new ConfigProblem('field "url" must be an http:// or https:// URL');
  } catch {
    return new ConfigProblem('field "url" is not a URL');
  }
  const headers: Record<string, string> = {};
  if (raw.headers !== undefined) {
    if (!isObject(raw.headers)) return new ConfigProblem('field "headers" must be an object of strings');
    for (const [k, v] of Object.entries(raw.headers)) {
      if (typeof v !== 'string') return new ConfigProblem(`field "headers.${k}" must be a string`);
      const problem = checkPlaceholders(v, placeholders, `headers.${k}`);
      if (problem) return problem;
      headers[k.toLowerCase()] = v;
    }
  }
  if (method === 'post') headers['content-type'] ??= 'application/json';
  const body = raw.body ?? {};
  if (!isObject(body)) return new ConfigProblem('field "body" must be an object');
  const bodyProblem = checkBody(body, placeholders, 'body');
  if (bodyProblem) return bodyProblem;
  const timeout = requestTimeout.parse(raw.request_timeout ?? 5000);
  if (timeout instanceof ConfigProblem) return new ConfigProblem(`field "request_timeout": ${timeout.message}`);
  const pool = poolSize.parse(raw.pool_size ?? 8);
  if (pool instanceof ConfigProblem) return new ConfigProblem(`field "pool_size": ${pool.message}`);
  if (raw.ssl !== undefined && !(isObject(raw.ssl) && (raw.ssl.enable === false || raw.ssl.enable === undefined))) {
    return new ConfigProblem('field "ssl" is not supported: use an https:// URL (verified against the system CAs)');
  }
  return { method, url, headers, body, requestTimeout: timeout, poolSize: pool };
}

/**
 * Header values with placeholders filled in. A client's value may hold anything: what a header
 * cannot carry (CR, LF, other control characters, non-ASCII) is percent-encoded, so a username
 * cannot add a header or break the request.
 */
function renderHeaders(headers: Readonly<Record<string, string>>, values: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = render(v, values, (x) => x.replace(/[^\t\x20-\x7e]/gu, (c) => encodeURIComponent(c)));
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function checkBody(v: unknown, placeholders: readonly string[], at: string): ConfigProblem | undefined {
  if (typeof v === 'string') return checkPlaceholders(v, placeholders, at);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = checkBody(v[i], placeholders, `${at}[${i}]`);
      if (p) return p;
    }
  } else if (isObject(v)) {
    for (const [k, item] of Object.entries(v)) {
      const p = checkBody(item, placeholders, `${at}.${k}`);
      if (p) return p;
    }
  }
  return undefined;
}

/** The body template with every string rendered (plain values: the encoding is the caller's). */
function renderDeep(v: unknown, values: Readonly<Record<string, string>>): unknown {
  if (typeof v === 'string') return render(v, values);
  if (Array.isArray(v)) return v.map((item) => renderDeep(item, values));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, renderDeep(item, values)]));
  return v;
}

/** One query or form value: strings as they are, anything else as JSON text. */
function formValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A keep-alive connection pool to one server (http or https) and the requests sent through it. */
export class HttpPool {
  private readonly agent: HttpAgent;

  constructor(private readonly secure: boolean, maxSockets: number) {
    const opts = { keepAlive: true, maxSockets };
    this.agent = secure ? new HttpsAgent(opts) : new HttpAgent(opts);
  }

  /** One request; rejects on a network error, a reply over 1 MB, or no complete reply within timeoutMs. */
  request(url: URL, method: string, headers: Record<string, string>, payload: Buffer | undefined, timeoutMs: number): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      const send = this.secure ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, agent: this.agent, signal: AbortSignal.timeout(timeoutMs) }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY_BYTES) req.destroy(new Error(`reply larger than ${MAX_REPLY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(err.name === 'AbortError' ? new Error(`no reply within ${timeoutMs} ms`) : err));
      req.end(payload);
    });
  }

  /** Closes the pooled connections. */
  close(): void {
    this.agent.destroy();
  }
}

/**
 * Sends one templated request per client to the configured server over a keep-alive pool.
 * Placeholder values are URL-encoded in the URL and in query or form parameters, JSON-encoded
 * in a JSON body; each template is rendered once.
 */
export class HttpTemplateClient {
  private readonly pool: HttpPool;

  constructor(readonly config: HttpRequestConfig) {
    this.pool = new HttpPool(config.url.startsWith('https:'), config.poolSize);
  }

  /** The server's URL without query or placeholder values: for logs (a query may carry a password). */
  get where(): string {
    return redactedUrl(this.config.url);
  }

  /** Sends the request for these placeholder values; rejects on a network error or after request_timeout. */
  send(values: Readonly<Record<string, string>>): Promise<HttpReply> {
    const { method, requestTimeout } = this.config;
    const headers = renderHeaders(this.config.headers, values);
    const url = new URL(render(this.config.url, values, encodeURIComponent));
    const fields = renderDeep(this.config.body, values) as Record<string, unknown>;
    let payload: Buffer | undefined;
    if (method === 'get') {
      for (const [k, v] of Object.entries(fields)) url.searchParams.append(k, formValue(v));
    } else if (headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
      payload = Buffer.from(new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, formValue(v)])).toString());
    } else {
      payload = Buffer.from(JSON.stringify(fields));
    }
    return this.pool.request(url, method.toUpperCase(), payload ? { ...headers, 'content-length': String(payload.length) } : headers, payload, requestTimeout);
  }

  /** Closes the pooled connections. */
  close(): void {
    this.pool.close();
  }
}

/** What the HTTP authenticator and the HTTP source share: the client to their server, closed on stop(). */
export abstract class HttpProvider {
  protected readonly client: HttpTemplateClient;

  constructor(config: HttpRequestConfig, protected readonly logger: Logger) {
    this.client = new HttpTemplateClient(config);
  }

  async stop(): Promise<void> {
    this.client.close();
  }
}

/** A URL (template) without user info, query and fragment, for logs. */
export function redactedUrl(url: string): string {
  const bare = url.replace(/\/\/[^/?#]*@/, '//');
  const cut = bare.search(/[?#]/);
  return cut < 0 ? bare : bare.slice(0, cut);
}

/** The reply's body as a JSON object, or undefined when it is not one. */
export function jsonObjectOf(body: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
