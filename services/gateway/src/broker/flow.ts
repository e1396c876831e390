import type { Session } from '../session/session';
import type { Metrics } from './metrics';

/** A connection whose reading flow control can pause (implemented by the channel). */
export interface Pausable {
  /** The session this connection delivers to, if any (a pressured subscriber is never paused). */
  readonly session: Session | undefined;
  pauseForFlow(): void;
  resumeForFlow(): void;
}

/**
 * The process does not accept more than it delivers. While some connected session's queue is
 * past half its bound ("pressured"), every connection that publishes is paused after the packets
 * it already sent are handled, and resumed once no session is pressured; so subscribers'
 * acknowledgements and writes get the event loop instead of publishers' input. A session that
 * stays pressured for `slowMs` is marked slow and no longer counted: one slow subscriber slows
 * publishers for at most that long, after which its QoS 1/2 messages wait in the log (its
 * backlog) and its QoS 0 messages follow the queue policy.
 */
export class FlowControl {
  private readonly pressured = new Map<Session, number>();
  private readonly paused = new Set<Pausable>();
  private waiters: (() => void)[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** True while some session is pressured: publishers are paused. */
  engaged = false;
  constructor(
    private readonly slowMs: number,
    private readonly metrics: Metrics,
  ) {}

  get pausedCount(): number {
    return this.paused.size;
  }

  get pressuredCount(): number {
    return this.pressured.size;
  }

  pressure(session: Session, on: boolean): void {
    if (!on) {
      if (this.pressured.delete(session) && this.pressured.size === 0) this.release();
      return;
    }
    this.pressured.set(session, Date.now());
    this.engaged = true;
    this.timer ??= setTimeout(() => this.check(), this.slowMs);
  }

  /** A connection published while engaged: it stops reading until the pressure is gone. */
  publisherActive(p: Pausable): void {
    if (!this.engaged || this.paused.has(p)) return;
    const s = p.session;
    // A client that also subscribes and is itself behind must keep reading its acknowledgements.
    if (s && this.pressured.has(s)) return;
    this.paused.add(p);
    this.metrics['flow.publishers.paused']++;
    p.pauseForFlow();
  }

  /** A paused connection closed. */
  forget(p: Pausable): void {
    this.paused.delete(p);
  }

  /** Resolves once no session is pressured (at most `slowMs` after the oldest began). */
  whenClear(): Promise<void> {
    if (!this.engaged) return Promise.resolve();
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pressured.clear();
    this.release();
  }

  private check(): void {
    this.timer = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const [s, since] of this.pressured) {
      if (now - since >= this.slowMs) {
        this.pressured.delete(s);
        this.metrics['flow.sessions.slow']++;
        s.markSlow();
      } else next = Math.min(next, since + this.slowMs);
    }
    if (this.pressured.size === 0) this.release();
    else this.timer = setTimeout(() => this.check(), Math.max(1, next - now));
  }

  private release(): void {
    this.engaged = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const paused = [...this.paused];
    this.paused.clear();
    for (const p of paused) p.resumeForFlow();
    const waiters = this.waiters;
    this.waiters = undefined;
    if (waiters) for (const w of waiters) w();
  }
}
