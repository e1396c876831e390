import { TributaryError } from './errors';
import type { Logger } from './logger';

/**
 * One part of a node with a lifecycle: the backbone, the broker, the MQTT listeners, the HTTP
 * API... A node is the services its role lists, started by a `ServiceHost`.
 */
export interface Service {
  /** Unique within a host; names it in logs and errors, and in other services' `dependsOn`. */
  readonly name: string;
  /** Services that must be started before this one (and are stopped after it). */
  readonly dependsOn?: readonly string[];
  /** Either starts or throws having released what it took: the host stops only what started. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The services given to a host do not form a valid graph (a duplicate, an unknown dependency, a cycle). */
export class ServiceGraphError extends TributaryError {
  constructor(message: string) {
    super('SERVICE_GRAPH', message);
  }
}

/** A service failed to start (`cause` says why); those started before it were stopped again. */
export class ServiceStartError extends TributaryError {
  constructor(
    readonly service: string,
    cause: unknown,
  ) {
    super('SERVICE_START_FAILED', `service ${service} failed to start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** One or more services failed to stop; every other one was still stopped. */
export class ServiceStopError extends TributaryError {
  constructor(
    readonly services: readonly string[],
    cause: unknown,
  ) {
    super('SERVICE_STOP_FAILED', `service${services.length > 1 ? 's' : ''} ${services.join(', ')} failed to stop`, { cause });
  }
}

/**
 * Starts services in dependency order and stops them in reverse. The order is deterministic:
 * registration order, except that a service's dependencies come first; one starts after
 * another (no parallel start), so logs and failures read the same on every run.
 */
export class ServiceHost {
  private readonly registered: Service[] = [];
  /** What actually started, in start order: what stop() undoes. */
  private readonly started: Service[] = [];

  constructor(private readonly log: Logger) {}

  add(service: Service): this {
    this.registered.push(service);
    return this;
  }

  /** Names of the services running now, in the order they started. */
  get running(): readonly string[] {
    return this.started.map((s) => s.name);
  }

  /** The start order; throws a ServiceGraphError naming a duplicate, an unknown dependency or a cycle. */
  order(): Service[] {
    const byName = new Map<string, Service>();
    for (const s of this.registered) {
      if (byName.has(s.name)) throw new ServiceGraphError(`service ${s.name} is registered twice`);
      byName.set(s.name, s);
    }
    const ordered: Service[] = [];
    const done = new Set<string>();
    const visiting: string[] = [];
    const visit = (s: Service): void => {
      if (done.has(s.name)) return;
      const at = visiting.indexOf(s.name);
      if (at >= 0) throw new ServiceGraphError(`services depend on each other in a cycle: ${[...visiting.slice(at), s.name].join(' -> ')}`);
      visiting.push(s.name);
      for (const dep of s.dependsOn ?? []) {
        const d = byName.get(dep);
        if (!d) throw new ServiceGraphError(`service ${s.name} depends on ${dep}, which is not registered`);
        visit(d);
      }
      visiting.pop();
      done.add(s.name);
      ordered.push(s);
    };
    for (const s of this.registered) visit(s);
    return ordered;
  }

  /** Starts every service; if one fails, stops those already started and throws a ServiceStartError. */
  async start(): Promise<void> {
    for (const service of this.order()) {
      const began = Date.now();
      try {
        await service.start();
      } catch (err) {
        this.log.error({ service: service.name, err: (err as Error).message }, 'service failed to start; stopping the ones started');
        await this.stop().catch((stopErr: unknown) => this.log.error({ err: (stopErr as Error).message }, 'stopping after a failed start failed'));
        throw new ServiceStartError(service.name, err);
      }
      this.started.push(service);
      this.log.info({ service: service.name, ms: Date.now() - began }, 'service started');
    }
  }

  /**
   * Stops what started, last first. A failing stop is logged and the rest still stop (the
   * backbone must flush even if a listener did not close cleanly); then it throws.
   */
  async stop(): Promise<void> {
    const failed: string[] = [];
    let firstError: unknown;
    for (let service = this.started.pop(); service; service = this.started.pop()) {
      const began = Date.now();
      try {
        await service.stop();
        this.log.info({ service: service.name, ms: Date.now() - began }, 'service stopped');
      } catch (err) {
        this.log.error({ service: service.name, err: (err as Error).message }, 'service failed to stop');
        failed.push(service.name);
        firstError ??= err;
      }
    }
    if (failed.length) throw new ServiceStopError(failed, firstError);
  }
}
