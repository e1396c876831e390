import { monitorEventLoopDelay, IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Logger, SizeOrFraction } from '@tributary/common';
import type { AuthenticateReply, Credentials, HookRegistry } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import type { LimitsConfig } from './limits-config';

/** One look at the process: event-loop delay and V8 heap. */
export interface LoadReading {
  /** Event-loop delay since the last reading (its 90th percentile), milliseconds. */
  lagMs: number;
  heapUsed: number;
  /** V8's heap limit (what a fraction in max_heap is of). */
  heapLimit: number;
}

/** ok, or overloaded by event-loop lag (CONNACK 0x89 Server busy) or by the heap (0x97 Quota exceeded). */
export type LoadState = 'ok' | 'lag' | 'heap';

export interface OverloadOptions {
  hooks: HookRegistry;
  logger: Logger;
  config: LimitsConfig['overload_protection'];
  /** How the process is read (default: perf_hooks' event-loop delay histogram and v8.getHeapStatistics). */
  read?: () => LoadReading;
  /** How often it is read (default 1 s). */
  intervalMs?: number;
}

/** The overload protection's counter, in /status metrics. */
export interface OverloadMetrics {
  /** CONNECTs refused while overloaded. */
  'overload.refused': number;
}

/** How often the event-loop delay is sampled. */
const RESOLUTION_MS = 20;

function heapBound(max: SizeOrFraction, limit: number): number {
  return 'bytes' in max ? max.bytes : max.fraction * limit;
}

/**
 * overload_protection: reads the event-loop delay and the heap once a second (an unref'd timer)
 * and, while either is over its bound, refuses new CONNECTs at the `banned` priority (CONNACK
 * 0x89 for lag, 0x97 for the heap; 3.x: 3). Connected clients are left alone. It recovers by
 * itself at the first reading under both bounds; each episode is logged once when it starts and
 * once when it ends.
 */
export class OverloadProtection {
  readonly metrics: OverloadMetrics = { 'overload.refused': 0 };
  private current: LoadState = 'ok';
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  private remove: (() => void) | undefined;
  private episodeRefused = 0;

  constructor(private readonly opts: OverloadOptions) {}

  /** What the last reading found. */
  get state(): LoadState {
    return this.current;
  }

  async start(): Promise<void> {
    if (!this.opts.read) {
      this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.histogram.enable();
    }
    this.remove = this.opts.hooks.add('client.authenticate', { name: 'overload_protection', priority: 'banned' }, (cred) => this.admit(cred));
    this.check();
    this.timer = setInterval(() => this.check(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.histogram?.disable();
    this.remove?.();
  }

  /** Reads the process once and updates the state, logging a change; returns the new state. */
  check(): LoadState {
    const r = (this.opts.read ?? (() => this.reading()))();
    const { max_event_loop_lag, max_heap } = this.opts.config;
    const bound = heapBound(max_heap, r.heapLimit);
    const next: LoadState = r.heapUsed > bound ? 'heap' : r.lagMs > max_event_loop_lag ? 'lag' : 'ok';
    if (next !== this.current) {
      const log = this.opts.logger;
      if (next === 'ok') log.info({ refused: this.episodeRefused, lagMs: Math.round(r.lagMs), heapUsed: r.heapUsed }, 'overload over: accepting connections again');
      else log.warn({ cause: next, lagMs: Math.round(r.lagMs), maxLagMs: max_event_loop_lag, heapUsed: r.heapUsed, maxHeap: Math.round(bound) }, 'overloaded: refusing new connections');
      if (this.current === 'ok') this.episodeRefused = 0;
      this.current = next;
    }
    return next;
  }

  private reading(): LoadReading {
    const h = this.histogram!;
    // The histogram holds the time between its timer's turns: the resolution plus the delay. The
    // 90th percentile ignores one long turn (a GC) but not a loop that is slow turn after turn.
    const lagMs = h.count > 0 ? Math.max(0, h.percentile(90) / 1e6 - RESOLUTION_MS) : 0;
    h.reset();
    const heap = getHeapStatistics();
    return { lagMs, heapUsed: heap.used_heap_size, heapLimit: heap.heap_size_limit };
  }

  private admit(cred: Credentials): AuthenticateReply {
    // Only a new CONNECT: an exchange in progress or a re-authentication goes on.
    if (this.current === 'ok' || cred.authContinue || cred.reauthenticate) return undefined;
    this.metrics['overload.refused']++;
    this.episodeRefused++;
    return { stop: true, result: 'deny', reasonCode: this.current === 'heap' ? RC.QUOTA_EXCEEDED : RC.SERVER_BUSY };
  }
}
