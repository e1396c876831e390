import { ProgressLog } from '@tributary/common';
import { NEVER_EXPIRES, Session } from '../session/session';
import type { PersistedSession, SessionOwner, Will } from '../session/types';
import { replay, restoreSession, RestoredSession } from './replay';
import type { BrokerCore, OpenedSession, OpenSessionRequest, OwnershipStrategy } from './strategies';

/**
 * The single node's ownership: this process is the only one, so every persistent session is
 * restored from the session store at start (with the messages it missed replayed from the log),
 * and sessions are opened, taken over and closed in-process.
 */
export class LocalOwnership implements OwnershipStrategy {
  private core!: BrokerCore;

  /** Restores persistent sessions and their undelivered messages; expired ones are removed. */
  async start(core: BrokerCore): Promise<void> {
    this.core = core;
    const now = Date.now();
    const restored = new Map<string, RestoredSession>();
    const all = await core.store.loadAll();
    const progress = new ProgressLog(core.log, 'restoring persistent sessions');
    let done = 0;
    for (const p of all) {
      progress.report(() => ({ restored: done, of: all.length }));
      done++;
      const since = p.disconnectedAt ?? now;
      if (p.expiryInterval !== NEVER_EXPIRES && since + p.expiryInterval * 1000 <= now) {
        void core.store.remove(p.clientId);
        continue;
      }
      const r = restoreSession(core, p, since);
      core.scheduleExpiry(r.session);
      restored.set(p.clientId, r);
    }
    const replayed = await replay(core, restored);
    if (restored.size) core.log.info({ sessions: restored.size, replayed }, 'restored persistent sessions');
  }

  open(req: OpenSessionRequest): OpenedSession {
    return this.core.openHere(req);
  }

  /** Stored before SUBACK (persistent sessions); nothing else routes. */
  confirmSubscriptions(session: Session): Promise<void> | undefined {
    return session.persistent ? this.core.persist(session) : undefined;
  }

  record(session: Session): PersistedSession {
    return session.snapshot();
  }

  mayWrite(): boolean {
    return true;
  }

  connectionClosed(session: Session, owner: SessionOwner, will: Will | undefined): void {
    this.core.closeHere(session, owner, will);
  }

  discarded(): void {}

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
