/**
 * What a package adds to the HTTP API: routes, each a method, a path under /api/v5 (fastify's
 * `:param` syntax) and a handler. Packages stay free of the HTTP framework: a handler gets the
 * parsed request and returns a status and a body, or throws a TributaryError, which the server
 * answers with its status and `{code, message}` (libs/common errors.ts, httpErrorOf).
 */
export interface ApiRequest {
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  body: unknown;
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
  /** Answer without an API key (Prometheus scraping by default). */
  public?: boolean;
  handler(req: ApiRequest): ApiReply | Promise<ApiReply>;
}

/** EMQX's paging: `page` (from 1) and `limit` (1..10000, default 100), or a 400 INVALID_PARAMETER. */
export function paging(query: Record<string, string | undefined>): { page: number; limit: number } {
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
