/** The HTTP side of `tributary ctl`: one call to the node's /api/v5, errors an operator can act on. */

/** Where the API is and the Authorization header to send. */
export interface Target {
  url: string;
  auth: string | undefined;
}

/** A ctl failure: printed as one line, exit code 1. */
export class CtlError extends Error {}

/** One request to `/api/v5<path>`; a refused key, an unreachable API and error bodies become CtlErrors. */
export async function call(t: Target, method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${t.url}/api/v5${path}`, {
      method,
      headers: { ...(t.auth ? { authorization: t.auth } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CtlError(`cannot reach the HTTP API at ${t.url} (${cause}); is the node running? (--url to point elsewhere)`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = json as { code?: string; message?: string } | undefined;
    if (res.status === 401) throw new CtlError(`the HTTP API refused the API key (${e?.code}: ${e?.message}); pass --key/--secret or set api_key.bootstrap_file`);
    if (res.status === 404 && e?.message === 'Request Path Not Found') throw new CtlError(`this node's HTTP API has no ${method} ${path.split('?')[0]} (an older version?)`);
    throw new CtlError(`${e?.code ?? res.status}: ${e?.message ?? text}`);
  }
  return json;
}

/** Every page of a paged endpoint. */
export async function all<T>(t: Target, path: string): Promise<T[]> {
  const out: T[] = [];
  for (let p = 1; ; p++) {
    const sep = path.includes('?') ? '&' : '?';
    const r = (await call(t, 'GET', `${path}${sep}page=${p}&limit=1000`)) as { data: T[]; meta: { hasnext?: boolean; count?: number } };
    out.push(...r.data);
    const more = r.meta.hasnext ?? (r.meta.count !== undefined && out.length < r.meta.count);
    if (!more || r.data.length === 0) return out;
  }
}
