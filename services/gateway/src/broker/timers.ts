import { NEVER_EXPIRES, Session } from '../session/session';
import type { Will } from '../session/types';

/** setTimeout holds at most ~24.8 days. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** When disconnected sessions expire, by client id (one timer each; a reconnect clears it). */
export class ExpiryTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** Calls `expire` once the session's expiry interval has passed since it disconnected. */
  schedule(session: Session, expire: (session: Session) => void): void {
    this.clear(session.clientId);
    if (session.expiryInterval === NEVER_EXPIRES) return;
    const due = (session.disconnectedAt ?? Date.now()) + session.expiryInterval * 1000 - Date.now();
    const timer = setTimeout(() => {
      this.timers.delete(session.clientId);
      expire(session);
    }, Math.max(0, Math.min(due, MAX_TIMEOUT_MS)));
    timer.unref();
    this.timers.set(session.clientId, timer);
  }

  clear(clientId: string): void {
    const t = this.timers.get(clientId);
    if (t) clearTimeout(t);
    this.timers.delete(clientId);
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

/** Wills waiting for their delay, by client id; a reconnect cancels one [MQTT-3.1.3-9]. */
export class WillTimers {
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; will: Will }>();

  constructor(private readonly publish: (will: Will) => void) {}

  /** The will waits min(Will Delay, Session Expiry) [MQTT-3.1.3-9]; published at once when that is 0. */
  schedule(clientId: string, will: Will, expirySeconds: number): void {
    const delay = Math.min(will.delaySeconds, expirySeconds);
    if (delay <= 0) {
      this.publish(will);
      return;
    }
    this.cancel(clientId);
    const due = Date.now() + delay * 1000;
    const fire = (): void => {
      // Longer delays than one timer holds re-arm.
      const left = due - Date.now();
      if (left > 0) return void this.timers.set(clientId, { timer: setTimeout(fire, Math.min(left, MAX_TIMEOUT_MS)), will });
      this.timers.delete(clientId);
      this.publish(will);
    };
    this.timers.set(clientId, { timer: setTimeout(fire, Math.min(delay * 1000, MAX_TIMEOUT_MS)), will });
  }

  cancel(clientId: string): void {
    const w = this.timers.get(clientId);
    if (w) clearTimeout(w.timer);
    this.timers.delete(clientId);
  }

  /** Delayed wills fire now rather than being lost with the process. */
  fireAll(): void {
    for (const { timer, will } of this.timers.values()) {
      clearTimeout(timer);
      this.publish(will);
    }
    this.timers.clear();
  }
}
