import { randomBytes, timingSafeEqual } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import type { Logger } from '@tributary/common';
import type { NodeSnapshot } from './node-snapshots';
import { ApiError } from './routes';

/** The header a process's call to another process's API carries: the callee's secret (its snapshot's `api.secret`). */
export const PEER_HEADER = 'x-tributary-peer';
/** With PEER_HEADER: the call is a client's request passed on (ApiServer's forward), answered for the whole installation. */
export const FORWARDED_HEADER = 'x-tributary-forwarded';

/** What a peer answered: its status and its body, parsed when JSON (undefined for 204), else the text with its content type. */
export interface PeerReply {
  status: number;
  body: unknown;
  contentType?: string;
}

/** A call's query (repeated parameters as arrays) and JSON body; `forwarded`: a client's request passed on. */
export interface CallOptions {
  query?: Record<string, unknown>;
  body?: unknown;
  forwarded?: boolean;
}

/** What Cluster needs: this process's name and the others' snapshots (the `nodes` table). */
export interface ClusterOptions {
  self: string;
  peers(): NodeSnapshot[];
  log: Logger;
  /** How long a call to a peer may take (default 5 s). */
  timeoutMs?: number;
}

/**
 * Calls between the processes of a scaled-out installation: EMQX's RPC to each node, done over
 * HTTP. Every process's snapshot in the `nodes` table (node-snapshots.ts) names the address of
 * its API and a random secret made when it starts; a process calls another's API route with that
 * secret in `x-tributary-peer`, and the callee answers for itself only (ApiRequest.peer), so a
 * call never fans out again. The secret is as safe as the backbone: who can read the `nodes`
 * table can already write sessions, users and ACL rules there.
 */
export class Cluster {
  /** What a peer's call to this process carries. */
  readonly secret = randomBytes(24).toString('base64url');
  private readonly secretBytes = Buffer.from(this.secret);
  private readonly timeoutMs: number;

  constructor(private readonly opts: ClusterOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  get self(): string {
    return this.opts.self;
  }

  /** The other processes that run a broker and can be called (gateways), by name. */
  brokers(): NodeSnapshot[] {
    return this.opts.peers().filter((s) => s.broker && s.api);
  }

  /** The other processes that run the rule engine and can be called, by name. */
  ruleEngines(): NodeSnapshot[] {
    return this.opts.peers().filter((s) => s.rules && s.api);
  }

  /** Is this header this process's own secret (a call from a peer)? */
  accepts(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return false;
    const given = Buffer.from(header);
    return given.length === this.secretBytes.length && timingSafeEqual(given, this.secretBytes);
  }

  /**
   * One call to a peer's route: `path` below /api/v5, with its query (repeated parameters as
   * arrays) and JSON body. Resolves with any status it answered; rejects with 503 NODE_DOWN
   * when the peer cannot be reached or does not answer in time.
   */
  async call(peer: NodeSnapshot, method: string, path: string, opts: CallOptions = {}): Promise<PeerReply> {
    const qs = opts.query ? queryString(opts.query) : '';
    const url = `${peer.api!.url}/api/v5${path}${qs ? (path.includes('?') ? '&' : '?') + qs : ''}`;
    const headers: Record<string, string> = { [PEER_HEADER]: peer.api!.secret };
    if (opts.forwarded) headers[FORWARDED_HEADER] = '1';
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(this.timeoutMs) });
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      if (!text) return { status: res.status, body: undefined };
      return type.includes('json') ? { status: res.status, body: JSON.parse(text) as unknown } : { status: res.status, body: text, contentType: type };
    } catch (err) {
      this.opts.log.warn({ node: peer.node, url: peer.api!.url, err: (err as Error).message }, 'a call to another node of the installation failed');
      throw new ApiError(503, 'NODE_DOWN', `node ${peer.node} did not answer: ${(err as Error).message}`);
    }
  }

  /**
   * A call answered by one of `nodes` (default: the gateways), whichever: the first by name that
   * can be reached (for what they answer alike, where this process does not run what answers it).
   * 503 when none can.
   */
  async any(method: string, path: string, opts: CallOptions = {}, nodes: readonly NodeSnapshot[] = this.brokers(), what = 'gateway'): Promise<PeerReply> {
    let last: unknown = new ApiError(503, 'SERVICE_UNAVAILABLE', `no ${what} of the installation is running to answer this`);
    for (const gateway of nodes) {
      try {
        return await this.call(gateway, method, path, opts);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /**
   * The first answer of `nodes` that is not a 404, trying them all at once (the one that holds a
   * client answers, the others say 404): undefined when all said 404. A node that cannot be
   * reached counts as a 404 unless nobody holds the client, then it is the 503 NODE_DOWN.
   */
  async first(nodes: readonly NodeSnapshot[], method: string, path: string, opts: CallOptions = {}): Promise<PeerReply | undefined> {
    let down: unknown;
    const tries = nodes.map((n) =>
      this.call(n, method, path, opts).then(
        (r) => (r.status === 404 ? Promise.reject(r) : r),
        (err: unknown) => {
          down = err;
          return Promise.reject(err);
        },
      ),
    );
    try {
      return await Promise.any(tries);
    } catch {
      if (down) throw down;
      return undefined;
    }
  }
}

/** A query object as a query string; arrays become repeated parameters, undefined is left out. */
export function queryString(query: Record<string, unknown>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const x of v) p.append(k, String(x));
    else p.append(k, String(v));
  }
  return p.toString();
}

/**
 * The URL other processes reach this API at: `advertise` (host:port) when set, else the bound
 * address, with the first non-internal IPv4 address of this host in place of a wildcard
 * (0.0.0.0, ::), which is the pod's or container's address under Kubernetes or Compose.
 */
export function advertisedUrl(bound: { host: string; port: number }, advertise = ''): string {
  if (advertise) return `http://${advertise}`;
  let host = bound.host;
  if (host === '0.0.0.0' || host === '::' || host === '') {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    host = external?.address ?? '127.0.0.1';
  }
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound.port}`;
}

/**
 * Merges lists each sorted by `key` into one sorted list (k-way; stable: on equal keys the
 * earlier list's item first), with the index of the list each item came from.
 */
export function mergeSorted<T>(lists: readonly (readonly T[])[], key: (t: T) => string): { item: T; from: number }[] {
  const at = lists.map(() => 0);
  const out: { item: T; from: number }[] = [];
  for (;;) {
    let best = -1;
    let bestKey = '';
    for (let i = 0; i < lists.length; i++) {
      const list = lists[i]!;
      if (at[i]! >= list.length) continue;
      const k = key(list[at[i]!]!);
      if (best < 0 || k < bestKey) {
        best = i;
        bestKey = k;
      }
    }
    if (best < 0) return out;
    out.push({ item: lists[best]![at[best]!++]!, from: best });
  }
}
