import type { Session } from '../session/session';
import type { Metrics } from './metrics';

/** A connection whose reading flow control can pause (implemented by the channel). */
export interface Pausable {
  /** The session this connection delivers to, if any (a pressured subscriber is never paused). */
  readonly session: Session | undefined;
  pauseForFlow(): void;
  resumeForFlow(): void;
}

/** A pressured session: since when, and the progress marks of the last check. */
interface Watch {
  since: number;
  /** Messages sent to every session, and to this one, at the last check. */
  total: number;
  own: number;
  /** Bytes its socket handed to the OS at the last check. */
  bytes: number;
}

/**
 * The process does not accept more than it delivers. While some connected session's queue is
 * past half its bound ("pressured"), every connection that publishes is paused after the packet
 * it is handling, and resumed once no session is pressured; so subscribers' acknowledgements and
 * writes get the event loop instead of publishers' input, and the publishers' PUBACKs pace them.
 *
 * A pressured session is marked slow, and no longer counted, when over one check interval
 * (`slowMs`) it made no progress (its socket took nothing: a stalled client), or other sessions
 * received messages while it stayed behind (it is slower than its peers), or after 4 × `slowMs`
 * in any case. So one slow subscriber holds publishers back for a fraction of a second, after
 * which its QoS 1/2 messages wait in the log (its backlog) and its QoS 0 messages follow the
 * queue policy; while a lone subscriber that reads is the process's only consumer, publishers
 * are paced to it instead of its messages being dropped.
 */
export class FlowControl {
  private readonly pressured = new Map<Session, Watch>();
  private readonly paused = new Set<Pausable>();
  private waiters: (() => void)[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** True while some session is pressured: publishers are paused. */
  engaged = false;
  constructor(
    private readonly slowMs: number,
    private readonly metrics: Metrics,
  ) {}

  private watch(s: Session, since: number): Watch {
    return { since, total: this.metrics['messages.sent'], own: s.sent, bytes: s.owner?.progress ?? 0 };
  }

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
    this.pressured.set(session, this.watch(session, Date.now()));
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
    const total = this.metrics['messages.sent'];
    for (const [s, w] of this.pressured) {
      if (now - w.since < this.slowMs) continue;
      const own = s.sent - w.own;
      const stalled = own === 0 && (s.owner?.progress ?? 0) === w.bytes;
      const others = total - w.total - own;
      if (stalled || others > 0 || now - w.since >= 4 * this.slowMs) {
        this.pressured.delete(s);
        this.metrics['flow.sessions.slow']++;
        s.markSlow();
      } else this.pressured.set(s, this.watch(s, w.since));
    }
    if (this.pressured.size === 0) this.release();
    else this.timer = setTimeout(() => this.check(), this.slowMs / 2);
  }

  private release(): void {
    this.engaged = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.paused.size === 0 && !this.waiters) return;
    const paused = [...this.paused];
    this.paused.clear();
    const waiters = this.waiters;
    this.waiters = undefined;
    // Not from inside the session operation that relieved the pressure: publishes would re-enter it.
    process.nextTick(() => {
      for (const p of paused) if (!this.paused.has(p)) p.resumeForFlow();
      if (waiters) for (const w of waiters) w();
    });
  }
}
