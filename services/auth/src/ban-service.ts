import type { Logger } from '@tributary/common';
import type { AuthenticateReply, ClientInfo, ConnectInfo, Credentials, HookRegistry } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import { Ban, BanStore } from './banned';
import type { LimitsConfig } from './limits-config';

export interface BanServiceOptions {
  store: BanStore;
  hooks: HookRegistry;
  logger: Logger;
  /** flapping_detect. */
  flapping: LimitsConfig['flapping_detect'];
  /** Disconnects a connected client of this process (v5: DISCONNECT with the reason code). */
  kick: (clientId: string, reasonCode: number) => void;
  /** How often expired bans are removed from the table and stale flapping counts dropped (default 60 s). */
  sweepIntervalMs?: number;
}

/** Counters of the ban service, in /status metrics. */
export interface BanMetrics {
  /** CONNECTs refused because a ban matched (flapping bans included). */
  'client.banned': number;
  /** Connected clients closed because a ban added later matched them. */
  'client.banned.disconnected': number;
  /** Client ids banned by flapping detection. */
  'client.flapping': number;
}

interface Flaps {
  since: number;
  count: number;
}

/**
 * Enforces the bans of a BanStore: client.authenticate at the `banned` priority refuses a
 * banned client before any authenticator runs (CONNACK 0x8A; 3.x: 5), and a ban added here or
 * by another process disconnects every matching client of this process at once (DISCONNECT
 * 0x98 Administrative action: 0x8A is not a DISCONNECT reason code). It tracks connected clients itself, through client.connected and client.disconnected.
 * With flapping_detect on, a client id sending more than max_count CONNECTs within window_time
 * is banned for ban_time through the store, so every process refuses it.
 */
export class BanService {
  readonly metrics: BanMetrics = { 'client.banned': 0, 'client.banned.disconnected': 0, 'client.flapping': 0 };
  /** Connected clients of this process by client id. */
  private readonly connected = new Map<string, ClientInfo>();
  private readonly flaps = new Map<string, Flaps>();
  /** Bans whose refusals were logged already (one line per ban, not per CONNECT). */
  private readonly logged = new WeakSet<Ban>();
  private readonly removers: (() => void)[] = [];
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly opts: BanServiceOptions) {}

  get store(): BanStore {
    return this.opts.store;
  }

  async start(): Promise<void> {
    const { hooks } = this.opts;
    this.removers.push(
      hooks.add('client.authenticate', { name: 'banned', priority: 'banned' }, (cred) => this.check(cred)),
      hooks.add('client.connected', { name: 'banned', priority: 'banned' }, (c) => void this.connected.set(c.clientId, c)),
      hooks.add('client.disconnected', { name: 'banned', priority: 'banned' }, (c) => {
        // A takeover connects the new client before the old one's disconnected: keep the new one.
        if (this.connected.get(c.clientId) === c) this.connected.delete(c.clientId);
      }),
      this.store.onAdded((ban) => this.enforce(ban)),
    );
    if (this.opts.flapping.enable) this.removers.push(hooks.add('client.connect', { name: 'flapping_detect', priority: 'banned' }, (c) => this.counted(c)));
    this.sweeper = setInterval(() => void this.sweep(), this.opts.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
    await this.sweep();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const remove of this.removers.splice(0)) remove();
    this.connected.clear();
    this.flaps.clear();
  }

  /** Removes expired bans and flapping counts whose window has passed. */
  async sweep(now = Date.now()): Promise<void> {
    const window = this.opts.flapping.window_time;
    for (const [id, f] of this.flaps) if (now - f.since > window) this.flaps.delete(id);
    try {
      await this.store.purgeExpired(Math.floor(now / 1000));
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'expired bans could not be removed; retrying later');
    }
  }

  private check(cred: Credentials): AuthenticateReply {
    const ban = this.store.isBanned(cred);
    if (!ban) return undefined;
    this.metrics['client.banned']++;
    if (!this.logged.has(ban)) {
      this.logged.add(ban);
      this.opts.logger.info({ as: ban.as, who: ban.who, by: ban.by, clientId: cred.clientId }, 'banned client refused (logged once per ban)');
    }
    return { stop: true, result: 'deny', reasonCode: RC.BANNED };
  }

  /** A ban was added (here or elsewhere): close the clients of this process it matches. */
  private enforce(ban: Ban): void {
    const matching =
      ban.as === 'clientid' ? [this.connected.get(ban.who)].filter((c): c is ClientInfo => c !== undefined) : [...this.connected.values()].filter((c) => this.store.matches(ban, c));
    for (const c of matching) {
      this.metrics['client.banned.disconnected']++;
      this.opts.logger.info({ as: ban.as, who: ban.who, clientId: c.clientId }, 'banned client disconnected');
      // 0x8A Banned is a CONNACK code only; a DISCONNECT says 0x98 Administrative action (§3.14.2.1).
      this.opts.kick(c.clientId, RC.ADMINISTRATIVE_ACTION);
    }
  }

  /** flapping_detect: one more CONNECT of `c.clientId` (client.connect runs before client.authenticate). */
  private counted(c: ConnectInfo): void {
    const { window_time, max_count, ban_time } = this.opts.flapping;
    const now = Date.now();
    const f = this.flaps.get(c.clientId);
    if (!f || now - f.since > window_time) {
      this.flaps.set(c.clientId, { since: now, count: 1 });
      return;
    }
    if (++f.count <= max_count) return;
    this.flaps.delete(c.clientId);
    if (this.store.isBanned(c)) return;
    this.metrics['client.flapping']++;
    this.opts.logger.warn({ clientId: c.clientId, connects: f.count, windowMs: window_time, banMs: ban_time }, 'flapping client banned');
    const until = Math.ceil((now + ban_time) / 1000);
    // Indexed at once (this CONNECT is refused by check()); written to the table in the background.
    this.store.add({ as: 'clientid', who: c.clientId, by: 'flapping_detect', reason: 'flapping is detected', until }).catch((err: Error) => {
      this.opts.logger.warn({ clientId: c.clientId, err: err.message }, 'flapping ban could not be written');
    });
  }
}
