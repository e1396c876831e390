import type { Session } from '../session/session';
import type { Metrics } from './metrics';

/** A connection whose reading flow control can pause (implemented by the channel). */
export interface Pausable {
  /** The session this connection delivers to, if any (a pressured subscriber is never paused). */
  readonly session: Session | undefined;
  pauseForFlow(): void;
  resumeForFlow(): void;
}

/** A pressured session: since when, and its progress marks at the last check. */
interface Watch {
  since: number;
  /** When the marks were taken. */
  at: number;
  /** Messages sent to it. */
  sent: number;
  /** Bytes its socket handed to the OS. */
  bytes: number;
}

export interface FlowLimits {
  /** How long a session may hold publishers back before it must show progress (ms). */
  slowMs: number;
  /** Progress that keeps a pressured session counted, per `slowMs`: messages sent, or bytes taken by its socket. */
  minMessages: number;
  minBytes: number;
}

/**
 * The process does not accept more than it delivers. While some connected session's queue is
 * past half its bound ("pressured"), every connection that publishes is paused after the packet
 * it is handling, and resumed once no session is pressured; so subscribers' acknowledgements and
 * writes get the event loop instead of publishers' input, and the publishers' PUBACKs pace them.
 *
 * A pressured session is marked slow, and no longer counted, when in `slowMs` it took less than
 * a quarter of its queue or of its send buffer (a stalled client, or one far slower than the
 * load), or after 4 × `slowMs` in any case. So a slow subscriber holds publishers back for a
 * fraction of a second once, after which its QoS 1/2 messages wait in the log (its backlog) and
 * its QoS 0 messages follow the queue policy; a subscriber that reads at a useful rate paces the
 * publishers instead of losing messages. (A session whose peers on the same message keep up never
 * gets here: the broker marks it slow at once, see Broker.pressure.)
 */
export class FlowControl {
  private readonly pressured = new Map<Session, Watch>();
  private readonly paused = new Set<Pausable>();
  private waiters: (() => void)[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** True while some session is pressured: publishers are paused. */
  engaged = false;
  private readonly slowMs: number;

  constructor(
    private readonly limits: FlowLimits,
    private readonly metrics: Metrics,
  ) {
    this.slowMs = limits.slowMs;
  }

  private watch(s: Session, since: number, at: number): Watch {
    return { since, at, sent: s.sent, bytes: s.owner?.progress ?? 0 };
  }

  get pausedCount(): number {
    return this.paused.size;
  }

  pressure(session: Session, on: boolean): void {
    if (!on) {
      if (this.pressured.delete(session) && this.pressured.size === 0) this.release();
      return;
    }
    const now = Date.now();
    this.pressured.set(session, this.watch(session, now, now));
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
    const { minMessages, minBytes } = this.limits;
    let next = Infinity;
    for (const [s, w] of this.pressured) {
      const due = w.at + this.slowMs;
      if (now < due) {
        next = Math.min(next, due);
        continue;
      }
      const progressed = s.sent - w.sent >= minMessages || (s.owner?.progress ?? 0) - w.bytes >= minBytes;
      if (!progressed || now - w.since >= 4 * this.slowMs) {
        this.pressured.delete(s);
        this.metrics['flow.sessions.slow']++;
        s.markSlow();
      } else {
        // Checked again after another interval, against this one's marks.
        this.pressured.set(s, this.watch(s, w.since, now));
        next = Math.min(next, now + this.slowMs);
      }
    }
    if (this.pressured.size === 0) this.release();
    else this.timer = setTimeout(() => this.check(), Math.max(1, next - now));
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
