import { ApiError, ApiReply, ApiRequest, ApiRoute, Cluster, mergeSorted, NodeSnapshot } from '@tributary/api';

/** One process's part of a list: how many items match, and the first ones in order. */
export interface ListPart<T> {
  count: number;
  data: T[];
}

/** A page in EMQX's shape. */
export interface Page<T> {
  data: T[];
  meta: { page: number; limit: number; count: number; hasnext: boolean };
}

/**
 * How a gateway's API answers for the installation (docs/architecture.md, "The HTTP API scaled
 * out"): it asks each other gateway (Cluster, an HTTP call with the node-to-node secret) for its
 * part, merges the parts in order and pages the result; a route on one client goes to the gateway
 * that holds it. `local` is this process's part, undefined where no broker runs (`tributary api`).
 */
export class ClusterQueries {
  constructor(private readonly cluster: Cluster) {}

  /** The other gateways to ask: none for a peer's own call (it answers for itself) or when there is no other gateway. */
  peersFor(req: ApiRequest): NodeSnapshot[] {
    return req.peer ? [] : this.cluster.brokers();
  }

  /**
   * A page of a list every gateway holds part of, sorted by `key` across them: each part is the
   * first `page × limit` items of its process (`path`, a peer-only route taking `upto`); a
   * gateway that does not answer is left out (and logged).
   */
  async page<T>(peers: readonly NodeSnapshot[], local: ((upto: number) => ListPart<T>) | undefined, path: string, query: Record<string, unknown>, p: { page: number; limit: number }, key: (t: T) => string): Promise<Page<T>> {
    const start = (p.page - 1) * p.limit;
    const parts = await this.parts(peers, local, path, query, start + p.limit);
    const merged = mergeSorted(parts.map((x) => x.data), key);
    const count = parts.reduce((n, x) => n + x.count, 0);
    return { data: merged.slice(start, start + p.limit).map((m) => m.item), meta: { page: p.page, limit: p.limit, count, hasnext: start + p.limit < count } };
  }

  /**
   * GET /clients for the installation in two steps, so a deep page moves client ids, not client
   * objects: every gateway's matching ids up to the page's end (`/cluster/clients`), merged in
   * client-id order; then the page's objects from the gateways holding them (POST /cluster/clients).
   */
  async clientsPage(peers: readonly NodeSnapshot[], local: { ids(upto: number): ListPart<string>; objects(ids: string[]): Record<string, unknown>[] } | undefined, query: Record<string, unknown>, p: { page: number; limit: number }): Promise<Page<Record<string, unknown>>> {
    const start = (p.page - 1) * p.limit;
    const nodes: (NodeSnapshot | undefined)[] = local ? [undefined, ...peers] : [...peers];
    const parts = await this.parts(peers, local && ((upto) => local.ids(upto)), '/cluster/clients', query, start + p.limit);
    const count = parts.reduce((n, x) => n + x.count, 0);
    const onPage = mergeSorted(parts.map((x) => x.data), (id) => id).slice(start, start + p.limit);
    const wanted = new Map<number, string[]>();
    for (const { item, from } of onPage) {
      let ids = wanted.get(from);
      if (!ids) wanted.set(from, (ids = []));
      ids.push(item);
    }
    const found = new Map<string, Record<string, unknown>>();
    await Promise.all(
      [...wanted].map(async ([from, ids]) => {
        const node = nodes[from];
        const objects = node === undefined ? local!.objects(ids) : await this.cluster.call(node, 'POST', '/cluster/clients', { body: { ids } }).then((r) => (r.status === 200 ? (r.body as Record<string, unknown>[]) : []), () => []);
        for (const o of objects) found.set(o.clientid as string, o);
      }),
    );
    // A client that left between the two steps is missing from its page.
    const data = onPage.map((x) => found.get(x.item)).filter((o): o is Record<string, unknown> => o !== undefined);
    return { data, meta: { page: p.page, limit: p.limit, count, hasnext: start + p.limit < count } };
  }

  /** The parts: this process's first (when it has one), then the peers' in order; a peer that fails gives an empty part. */
  private parts<T>(peers: readonly NodeSnapshot[], local: ((upto: number) => ListPart<T>) | undefined, path: string, query: Record<string, unknown>, upto: number): Promise<ListPart<T>[]> {
    const { page: _p, limit: _l, ...filters } = query;
    const empty: ListPart<T> = { count: 0, data: [] };
    const remote = peers.map((n) => this.cluster.call(n, 'GET', path, { query: { ...filters, upto } }).then((r) => (r.status === 200 ? (r.body as ListPart<T>) : empty), () => empty));
    return Promise.all(local ? [Promise.resolve(local(upto)), ...remote] : remote);
  }

  /** A route on one client: the answer of the gateway that holds it (the others say 404); undefined when none does. */
  async onOwner(peers: readonly NodeSnapshot[], req: ApiRequest, method: string, suffix: string): Promise<ApiReply | undefined> {
    const r = await this.cluster.first(peers, method, `/clients/${encodeURIComponent(req.params.clientid!)}${suffix}`, { body: req.body });
    return r && { status: r.status, body: r.body };
  }

  /** Every gateway's answer to `path` that is a 200 array, concatenated (this process's `local` first). */
  async gather(peers: readonly NodeSnapshot[], local: unknown[], path: string): Promise<unknown[]> {
    const remote = await Promise.all(peers.map((n) => this.cluster.call(n, 'GET', path).then((r) => (r.status === 200 && Array.isArray(r.body) ? r.body : []), () => [])));
    return [...local, ...remote.flat()];
  }

  /**
   * A route that reads this process's broker, made to work where none runs (`tributary api`): the
   * request goes to one gateway of the installation. Where a broker runs, it is the route as it is.
   */
  anywhere(route: ApiRoute, hasBroker: () => boolean): ApiRoute {
    return {
      ...route,
      handler: async (req) => {
        if (hasBroker() || req.peer || this.cluster.brokers().length === 0) return route.handler(req);
        const path = route.path.replace(/:([A-Za-z_]+)/g, (_, name: string) => encodeURIComponent(req.params[name] ?? ''));
        const r = await this.cluster.any(route.method, path, { query: req.query, body: route.method === 'GET' || route.method === 'DELETE' ? undefined : req.body });
        return { status: r.status, body: r.body, contentType: r.contentType };
      },
    };
  }
}

/** The 404 of a client no gateway holds. */
export function clientNotFound(): ApiError {
  return new ApiError(404, 'CLIENTID_NOT_FOUND', 'Client ID not found');
}
