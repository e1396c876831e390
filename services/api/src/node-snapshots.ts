import type { Backbone, Table } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import type { NodeStatusSource } from './index';

/** What one process of an installation tells the others about itself (the `nodes` table). */
export interface NodeSnapshot {
  node: string;
  role: string;
  version: string;
  /** Milliseconds since the epoch when it was written. */
  at: number;
  uptime: number;
  stats: Record<string, number>;
  metrics: Record<string, number>;
  /** Where other processes call its API (cluster.ts), and the secret such a call carries; absent without an API. */
  api?: { url: string; secret: string };
  /** It runs a broker (a gateway, or a single node): it answers for its clients and subscriptions. */
  broker?: boolean;
  /** It runs the rule engine (a single node, or `tributary rules`): it answers the rule engine's routes. */
  rules?: boolean;
}

/** What a process tells the others besides its numbers: how to call it, and whether it holds clients. */
export interface SnapshotExtras {
  /** The API's address and secret once it listens (undefined before). */
  api?(): { url: string; secret: string } | undefined;
  broker?: boolean;
  rules?: boolean;
}

export const NODES_TABLE = 'nodes';
/** How often each process writes its snapshot. */
export const SNAPSHOT_INTERVAL_MS = 5_000;
/** A snapshot older than this is a node that stopped answering (not listed). */
const STALE_MS = 30_000;

/**
 * The cluster view of the HTTP API: every process writes its stats and metrics to the compacted
 * `nodes` table of the backbone every 5 s (and removes its row when it stops), so any process's
 * /stats, /metrics and /nodes answer for the whole installation. The row also says where its API
 * is, so the client routes can call it (cluster.ts). On one node the table holds it alone.
 */
export class NodeSnapshots {
  private table: Table | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly backbone: Backbone,
    private readonly node: NodeStatusSource,
    private readonly role: string,
    private readonly log: Logger,
    private readonly extras: SnapshotExtras = {},
  ) {}

  async start(): Promise<void> {
    await this.backbone.ensureTopics([{ name: NODES_TABLE, cleanup: 'compact' }]);
    this.table = await this.backbone.table(NODES_TABLE);
    await this.write();
    this.timer = setInterval(() => void this.write(), SNAPSHOT_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.table?.delete(this.node.nodeName).catch(() => undefined);
  }

  /** The other processes' latest snapshots (fresh ones only), by node name. */
  peers(now = Date.now()): NodeSnapshot[] {
    const out: NodeSnapshot[] = [];
    if (!this.table) return out;
    for (const [key, value] of this.table.entries()) {
      if (key === this.node.nodeName) continue;
      try {
        const s = JSON.parse(value.toString()) as NodeSnapshot;
        if (now - s.at <= STALE_MS) out.push(s);
      } catch {
        // a row another version wrote: not a node we can show
      }
    }
    return out.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  private async write(): Promise<void> {
    const s: NodeSnapshot = { node: this.node.nodeName, role: this.role, version: this.node.version, at: Date.now(), uptime: Math.round(process.uptime() * 1000), stats: this.node.stats(), metrics: this.node.metrics(), api: this.extras.api?.(), broker: this.extras.broker, rules: this.extras.rules };
    try {
      await this.table!.set(s.node, Buffer.from(JSON.stringify(s)));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not write this node\'s snapshot to the nodes table');
    }
  }
}
