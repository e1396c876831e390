/**
 * The dashboard's HTTP client for /api/v5: the bearer token from POST /login lives in
 * sessionStorage (one tab, gone when it closes) and goes on every call as
 * `Authorization: Bearer`. A 401 forgets the token and sends the user to the login page.
 */
const TOKEN_KEY = 'tributary.token';
const USER_KEY = 'tributary.user';
const BASE = '/api/v5';

/** An API answer that was not 2xx: its status and EMQX's {code, message}. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** EMQX's paged list shape. */
export interface Paged<T> {
  data: T[];
  meta: { page: number; limit: number; count?: number; hasnext: boolean };
}

/** The saved token, if logged in. */
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Who is logged in (shown in the header). */
export function currentUser(): string | null {
  return sessionStorage.getItem(USER_KEY);
}

let onUnauthorized: () => void = () => undefined;

/** What to do when the token is refused (the app navigates to the login page). */
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

/** POST /login; keeps the token on success, throws ApiFailure otherwise. */
export async function login(username: string, password: string): Promise<void> {
  const out = (await call('POST', '/login', { username, password }, false)) as { token?: string };
  if (!out || typeof out.token !== 'string') throw new ApiFailure(500, 'BAD_RESPONSE', 'the login answer carried no token');
  sessionStorage.setItem(TOKEN_KEY, out.token);
  sessionStorage.setItem(USER_KEY, username);
}

/** Forgets the token (POST /logout is best effort). */
export async function logout(): Promise<void> {
  const user = currentUser();
  try {
    if (token()) await call('POST', '/logout', { username: user }, true);
  } catch {
    // The token is dropped either way.
  }
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

/** One API call; resolves to the parsed JSON body (undefined for 204). */
export async function call(method: string, path: string, body?: unknown, auth = true): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const t = token();
  if (auth && t) headers.authorization = `Bearer ${t}`;
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!res.ok) {
    const e = (parsed ?? {}) as { code?: string; message?: string };
    if (res.status === 401 && auth) {
      sessionStorage.removeItem(TOKEN_KEY);
      onUnauthorized();
    }
    throw new ApiFailure(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (typeof parsed === 'string' ? parsed : res.statusText));
  }
  return parsed;
}

/** GET with a query string built from the defined values of `query`. */
export function get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return call('GET', s ? `${path}?${s}` : path) as Promise<T>;
}

/** Percent-encodes one path segment (client ids and topics may hold '/', '#', '+'). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}
