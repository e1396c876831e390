import type { Delivery, DropReason, Session, SessionHost } from '../src';

/** A SessionHost that records what a session reports to its broker (unit tests of Session). */
export class RecordingHost implements SessionHost {
  changes = 0;
  /** Dropped deliveries: [reason, topic]. */
  readonly drops: Array<[DropReason, string]> = [];
  /** Flow-control reports in order: pressure, relief, backlogged, backlog-ended, overflow. */
  readonly events: string[] = [];
  changed(): void {
    this.changes++;
  }
  dropped(reason: DropReason, d: Delivery): void {
    this.drops.push([reason, d.msg.topic]);
  }
  delivered(): void {}
  acked(): void {}
  pressure(_s: Session, on: boolean): void {
    this.events.push(on ? 'pressure' : 'relief');
  }
  backlogged(): void {
    this.events.push('backlogged');
  }
  backlogEnded(): void {
    this.events.push('backlog-ended');
  }
  backlogOverflow(): void {
    this.events.push('overflow');
  }
}
