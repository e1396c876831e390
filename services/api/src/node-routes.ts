import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { ApiError, ApiRoute } from './routes';
import type { NodeStatusSource } from './index';
import type { NodeSnapshot } from './node-snapshots';

const aggregate = { type: 'object', properties: { aggregate: { type: 'boolean' }, node: { type: 'string' } } };

/** EMQX's memory strings: "1.23G", "512.00M", "980.00K". */
function memory(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)}G`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)}M`;
  return `${(n / 2 ** 10).toFixed(2)}K`;
}

/** Sums of every numeric field (EMQX's `aggregate=true`). */
function sum(rows: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
  return out;
}

/**
 * /stats, /metrics and /nodes of the installation: this process's live numbers and the other
 * processes' from the `nodes` table (node-snapshots.ts, at most 5 s old). A list per node by
 * default, `?node=` for one, `?aggregate=true` for the sums (EMQX's shapes).
 */
export function nodeRoutes(node: NodeStatusSource): ApiRoute[] {
  const self = (): NodeSnapshot => ({ node: node.nodeName, role: 'core', version: node.version, at: Date.now(), uptime: Math.round(process.uptime() * 1000), stats: node.stats(), metrics: node.metrics() });
  const all = (): NodeSnapshot[] => [self(), ...(node.peers?.() ?? [])];
  const find = (name: string): NodeSnapshot => {
    const s = all().find((x) => x.node === name);
    if (!s) throw new ApiError(404, 'NOT_FOUND', `node ${name} not found`);
    return s;
  };
  const peerObject = (s: NodeSnapshot): Record<string, unknown> => ({
    node: s.node,
    node_status: 'running',
    version: s.version,
    edition: 'Opensource',
    uptime: s.uptime,
    role: s.role,
    connections: s.stats['connections.count'] ?? 0,
    live_connections: s.stats['connections.count'] ?? 0,
    cluster_sessions: s.stats['sessions.count'] ?? 0,
  });
  const nodeObject = (s: NodeSnapshot): Record<string, unknown> => (s.node === node.nodeName ? localObject() : peerObject(s));
  const localObject = (): Record<string, unknown> => {
    const stats = node.stats();
    const load = loadavg();
    return {
      node: node.nodeName,
      node_status: node.running ? 'running' : 'stopped',
      version: node.version,
      edition: 'Opensource',
      otp_release: `node ${process.version}`,
      uptime: Math.round(process.uptime() * 1000),
      role: 'core',
      connections: stats['connections.count'] ?? 0,
      live_connections: stats['live_connections.count'] ?? stats['connections.count'] ?? 0,
      cluster_sessions: stats['sessions.count'] ?? 0,
      load1: load[0],
      load5: load[1],
      load15: load[2],
      max_fds: null,
      memory_total: memory(totalmem()),
      memory_used: memory(totalmem() - freemem()),
      process_available: cpus().length,
      process_used: null,
      sys_path: process.cwd(),
      log_path: null,
    };
  };
  const perNode = (part: 'stats' | 'metrics') => (req: { query: Record<string, unknown> }) => {
    const q = req.query.node;
    const rows = typeof q === 'string' ? [find(q)] : all();
    if (req.query.aggregate === true || req.query.aggregate === 'true') return { body: sum(rows.map((r) => r[part])) };
    return { body: rows.map((r) => ({ node: r.node, ...r[part] })) };
  };
  return [
    { method: 'GET', path: '/stats', summary: "Every node's gauges (EMQX's stats names); ?node= one; ?aggregate=true: their sums", schema: { query: aggregate }, handler: perNode('stats') },
    { method: 'GET', path: '/metrics', summary: "Every node's counters (EMQX's metric names); ?node= one; ?aggregate=true: their sums", schema: { query: aggregate }, handler: perNode('metrics') },
    { method: 'GET', path: '/nodes', summary: 'Every node of the installation', handler: () => ({ body: all().map(nodeObject) }) },
    { method: 'GET', path: '/nodes/:node', summary: 'One node', handler: (req) => ({ body: nodeObject(find(req.params.node!)) }) },
    { method: 'GET', path: '/nodes/:node/stats', summary: "One node's gauges", handler: (req) => ({ body: find(req.params.node!).stats }) },
    { method: 'GET', path: '/nodes/:node/metrics', summary: "One node's counters", handler: (req) => ({ body: find(req.params.node!).metrics }) },
  ];
}
