import type { ApiRoute } from '@tributary/api';
import type { Logger } from '@tributary/common';
import type { HookRegistry } from '@tributary/hooks';
import type { ObservabilityConfig } from './config';
import { Monitor, monitorRoutes } from './monitor';
import { PrometheusCollector, prometheusRoutes } from './prometheus';
import type { ObservedNode } from './source';
import { Tracing } from './tracing';

/** What Observability needs: the node's configuration (the observability keys) and the node. */
export interface ObservabilityOptions {
  config: ObservabilityConfig;
  node: ObservedNode;
  logger: Logger;
}

/**
 * A node's Prometheus endpoints and monitor sampler (and, when `opentelemetry.traces.enable`,
 * its tracing: tracing.ts). Made before the node's services start; `routes()` go to the HTTP API.
 */
export class Observability {
  readonly prometheus: PrometheusCollector;
  readonly monitor: Monitor;
  /** Only with opentelemetry.traces.enable. */
  readonly tracing: Tracing | undefined;

  constructor(private readonly opts: ObservabilityOptions) {
    const c = opts.config;
    this.prometheus = new PrometheusCollector(opts.node, c.prometheus.prefix);
    this.monitor = new Monitor(opts.node, c.monitor.sample_interval);
    this.monitor.start();
    if (c.opentelemetry.traces.enable) this.tracing = new Tracing(c, opts.node.nodeName, opts.logger);
  }

  /** Traces a broker's CONNECTs, PUBLISHes, appends and deliveries (nothing when tracing is off). */
  attachBroker(hooks: HookRegistry, backbone: Parameters<Tracing['wrapAppend']>[0]): void {
    if (!this.tracing) return;
    this.tracing.attach(hooks);
    this.tracing.wrapAppend(backbone);
  }

  /** The routes this package adds under /api/v5. */
  routes(): ApiRoute[] {
    return [...prometheusRoutes(this.prometheus, this.opts.config.prometheus.enable_basic_auth), ...monitorRoutes(this.monitor, this.opts.node.nodeName)];
  }

  async stop(): Promise<void> {
    this.monitor.stop();
    this.prometheus.close();
    await this.tracing?.stop();
  }
}
