/** EMQX's rule counters (GET /rules/:id/metrics), plain fields so counting is one increment. */
export class RuleMetrics {
  matched = 0;
  passed = 0;
  failedException = 0;
  failedNoResult = 0;
  failedUnknown = 0;
  actionsTotal = 0;
  actionsSuccess = 0;
  actionsFailedOutOfService = 0;
  actionsFailedUnknown = 0;
  actionsDiscarded = 0;
  readonly rate = new Speed();

  /** EMQX's JSON: `failed` and `actions.failed` are the sums of their parts. */
  toJSON(): Record<string, number> {
    return {
      matched: this.matched,
      'matched.rate': this.rate.current,
      'matched.rate.max': this.rate.max,
      'matched.rate.last5m': this.rate.last5m,
      passed: this.passed,
      failed: this.failedException + this.failedNoResult + this.failedUnknown,
      'failed.exception': this.failedException,
      'failed.no_result': this.failedNoResult,
      'failed.unknown': this.failedUnknown,
      'actions.total': this.actionsTotal,
      'actions.success': this.actionsSuccess,
      'actions.failed': this.actionsFailedOutOfService + this.actionsFailedUnknown,
      'actions.failed.out_of_service': this.actionsFailedOutOfService,
      'actions.failed.unknown': this.actionsFailedUnknown,
      'actions.discarded': this.actionsDiscarded,
    };
  }

  sample(now: number): void {
    this.rate.sample(this.matched, now);
  }
}

/** EMQX's sink (action) counters (GET /actions/:id/metrics). */
export class SinkMetrics {
  matched = 0;
  received = 0;
  success = 0;
  failed = 0;
  inflight = 0;
  /** Requests buffered on the backbone and not yet delivered (gauge). */
  queuing = 0;
  lateReply = 0;
  droppedExpired = 0;
  droppedQueueFull = 0;
  droppedResourceNotFound = 0;
  droppedResourceStopped = 0;
  droppedOther = 0;
  retried = 0;
  retriedSuccess = 0;
  retriedFailed = 0;
  readonly rate = new Speed();

  toJSON(): Record<string, number> {
    return {
      matched: this.matched,
      received: this.received,
      success: this.success,
      failed: this.failed,
      inflight: this.inflight,
      queuing: this.queuing,
      late_reply: this.lateReply,
      dropped: this.droppedExpired + this.droppedQueueFull + this.droppedResourceNotFound + this.droppedResourceStopped + this.droppedOther,
      'dropped.expired': this.droppedExpired,
      'dropped.queue_full': this.droppedQueueFull,
      'dropped.resource_not_found': this.droppedResourceNotFound,
      'dropped.resource_stopped': this.droppedResourceStopped,
      'dropped.other': this.droppedOther,
      retried: this.retried,
      'retried.success': this.retriedSuccess,
      'retried.failed': this.retriedFailed,
      rate: this.rate.current,
      rate_max: this.rate.max,
      rate_last5m: this.rate.last5m,
    };
  }

  sample(now: number): void {
    this.rate.sample(this.matched, now);
  }
}

/**
 * A counter's speed as EMQX shows it: per second over the last sample period, its maximum, and
 * the average over the last five minutes. `sample` is called every few seconds with the counter.
 */
export class Speed {
  current = 0;
  max = 0;
  last5m = 0;
  private lastCount = 0;
  private lastAt = 0;
  private readonly window: { at: number; count: number }[] = [];

  sample(count: number, now: number): void {
    if (this.lastAt > 0 && now > this.lastAt) {
      this.current = round2(((count - this.lastCount) * 1000) / (now - this.lastAt));
      if (this.current > this.max) this.max = this.current;
    }
    this.lastCount = count;
    this.lastAt = now;
    this.window.push({ at: now, count });
    while (this.window.length > 1 && now - this.window[0]!.at > 300_000) this.window.shift();
    const first = this.window[0]!;
    this.last5m = now > first.at ? round2(((count - first.count) * 1000) / (now - first.at)) : 0;
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
