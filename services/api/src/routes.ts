/**
 * What a package adds to the HTTP API: routes, each a method, a path under /api/v5 (fastify's
 * `:param` syntax) and a handler. Packages stay free of the HTTP framework: a handler gets the
 * parsed request and returns a status and a body, or throws a TributaryError, which the server
 * answers with its status and `{code, message}` (libs/common errors.ts, httpErrorOf).
 */
export interface ApiRequest {
  params: Record<string, string>;
  /** A repeated parameter (`?clientid=a&clientid=b`) is an array at run time: read those with listParam(). */
  query: Record<string, string | undefined>;
  body: unknown;
  /** The bearer token the request came with (POST /logout revokes it). */
  token?: string;
  /** Another process of the installation made the call (cluster.ts): answer for this process only. */
  peer?: boolean;
}

export interface ApiReply {
  /** Default 200 (204 when there is no body). */
  status?: number;
  body?: unknown;
  /** A body that is text (a string) with this content type, e.g. Prometheus' exposition format; default JSON. */
  contentType?: string;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Below /api/v5, e.g. "/banned/:as/:who". */
  path: string;
  /** One line for the route table (and later the OpenAPI document). */
  summary: string;
  /** JSON schemas: `query` and `body` are validated (400 BAD_REQUEST naming the field) and, with `response`, go into /api-docs/swagger.json. */
  schema?: RouteSchema;
  /** Who may call it: any API key or bearer token (default), bearer tokens only (401 API_KEY_NOT_ALLOW for a key), anybody (login), or only another process of the installation (cluster.ts). */
  auth?: 'any' | 'bearer' | 'none' | 'peer';
  handler(req: ApiRequest): ApiReply | Promise<ApiReply>;
}

/** JSON schemas of a route (draft-07 as fastify's Ajv takes them; OpenAPI 3.0 shows them as they are). */
export interface RouteSchema {
  /** An object schema of the query parameters (`properties`); values are coerced to the declared types. */
  query?: Record<string, unknown>;
  body?: Record<string, unknown>;
  /** The 200 (or 201/204) body, for the document only (never used to filter what is sent). */
  response?: Record<string, unknown>;
}

/** Every value of a query parameter that may repeat (`?clientid=a&clientid=b`), in order. */
export function listParam(query: Record<string, unknown>, name: string): string[] {
  const v = query[name];
  if (v === undefined || v === null || v === '') return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/** EMQX's paging: `page` (from 1) and `limit` (1..10000, default 100), or a 400 INVALID_PARAMETER. */
export function paging(query: Record<string, unknown>): { page: number; limit: number } {
  const page = query.page === undefined ? 1 : Number(query.page);
  const limit = query.limit === undefined ? 100 : Number(query.limit);
  if (!Number.isInteger(page) || page < 1 || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new ApiError(400, 'INVALID_PARAMETER', 'page_limit_invalid');
  }
  return { page, limit };
}

/** A page of `items` in EMQX's shape: {data, meta: {page, limit, count, hasnext}}. */
export function page<T>(items: readonly T[], p: { page: number; limit: number }): { data: T[]; meta: { page: number; limit: number; count: number; hasnext: boolean } } {
  const start = (p.page - 1) * p.limit;
  return { data: items.slice(start, start + p.limit), meta: { page: p.page, limit: p.limit, count: items.length, hasnext: start + p.limit < items.length } };
}

/** An HTTP answer with EMQX's code, for what the error tree has no code for (paging, unknown ids). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
