import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { ApiError, ApiRoute } from './routes';
import type { NodeStatusSource } from './index';

const aggregate = { type: 'object', properties: { aggregate: { type: 'boolean' } } };

/** EMQX's memory strings: "1.23G", "512.00M", "980.00K". */
function memory(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)}G`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)}M`;
  return `${(n / 2 ** 10).toFixed(2)}K`;
}

/**
 * /stats, /metrics and /nodes of this node. One node answers for itself: the per-node list has one
 * entry and `aggregate=true` gives the same numbers as one object. A cluster view is ops-cluster's.
 */
export function nodeRoutes(node: NodeStatusSource): ApiRoute[] {
  const nodeObject = (): Record<string, unknown> => {
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
  const perNode = (get: () => Record<string, number>) => (req: { query: Record<string, unknown> }) => {
    const values = get();
    return { body: req.query.aggregate === true || req.query.aggregate === 'true' ? values : [{ node: node.nodeName, ...values }] };
  };
  const known = (name: string): void => {
    if (name !== node.nodeName) throw new ApiError(404, 'NOT_FOUND', `node ${name} not found`);
  };
  return [
    { method: 'GET', path: '/stats', summary: "The node's gauges (EMQX's stats names); ?aggregate=true: one object", schema: { query: aggregate }, handler: perNode(() => node.stats()) },
    { method: 'GET', path: '/metrics', summary: "The node's counters (EMQX's metric names); ?aggregate=true: one object", schema: { query: aggregate }, handler: perNode(() => node.metrics()) },
    { method: 'GET', path: '/nodes', summary: 'The nodes (this one)', handler: () => ({ body: [nodeObject()] }) },
    { method: 'GET', path: '/nodes/:node', summary: 'One node', handler: (req) => (known(req.params.node!), { body: nodeObject() }) },
    { method: 'GET', path: '/nodes/:node/stats', summary: "One node's gauges", handler: (req) => (known(req.params.node!), { body: node.stats() }) },
    { method: 'GET', path: '/nodes/:node/metrics', summary: "One node's counters", handler: (req) => (known(req.params.node!), { body: node.metrics() }) },
  ];
}
