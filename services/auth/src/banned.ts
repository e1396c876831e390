import { isIP } from 'node:net';
import type { Backbone, Table } from '@tributary/backbone';
import { type Logger, ValidationError } from '@tributary/common';
import { BANNED_AS, BannedAs, bannedCodec, bannedKey, BannedRecord, RecordReader } from '@tributary/records';
import { inCidr, parseCidr } from './acl';

/** The compacted backbone table of bans (key `<as>/<who>`, value io.tributary.v1.Banned). */
export const BANNED_TABLE = 'banned';

/** One ban, EMQX's JSON field names: `at` and `until` are seconds since the epoch (`until` may be "infinity"). */
export type Ban = BannedRecord;

/** What adding a ban takes: `as` and `who`; the rest have defaults. */
export interface BanInput {
  as: BannedAs;
  who: string;
  /** Default "mgmt_api" (EMQX's). */
  by?: string;
  /** Default "". */
  reason?: string;
  /** Seconds since the epoch; default now. */
  at?: number;
  /** Seconds since the epoch, or "infinity" (the default: a ban lasts until it is deleted). */
  until?: number | 'infinity';
}

/** What a ban is checked against: a connecting or connected client. */
export interface BannedClient {
  clientId: string;
  username: string | undefined;
  peerhost: string;
}

/** A ban with what matching needs, compiled once. */
interface Indexed {
  ban: Ban;
  re?: RegExp;
  /** A CIDR block (peerhost_net), checked. */
  net?: true;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** "::ffff:10.0.0.1" (an IPv4 client on a dual-stack socket) is 10.0.0.1. */
function plainAddress(host: string): string {
  return host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}

/** Compiles a ban for matching; throws ValidationError for a regular expression or CIDR block that does not parse. */
function compile(ban: Ban): Indexed {
  if (ban.as === 'clientid_re' || ban.as === 'username_re') {
    try {
      return { ban, re: new RegExp(ban.who) };
    } catch (err) {
      throw new ValidationError('INVALID_ARGUMENT', `ban ${ban.as} "${ban.who}": not a regular expression: ${(err as Error).message}`);
    }
  }
  if (ban.as === 'peerhost_net') {
    if (!parseCidr(ban.who)) throw new ValidationError('INVALID_ARGUMENT', `ban peerhost_net "${ban.who}": not a CIDR block such as 10.0.0.0/8`);
    return { ban, net: true };
  }
  if (ban.as === 'peerhost' && isIP(plainAddress(ban.who)) === 0) throw new ValidationError('INVALID_ARGUMENT', `ban peerhost "${ban.who}": not an IP address`);
  return { ban };
}

/** Whether a compiled ban matches the client; `host` is its peerhost without an IPv4-mapped prefix. */
function matchOne(i: Indexed, client: BannedClient, host: string): boolean {
  const { as, who } = i.ban;
  switch (as) {
    case 'clientid':
      return client.clientId === who;
    case 'username':
      return client.username === who;
    case 'peerhost':
      return host === plainAddress(who);
    case 'clientid_re':
      return i.re!.test(client.clientId);
    case 'username_re':
      return client.username !== undefined && i.re!.test(client.username);
    case 'peerhost_net':
      return inCidr(host, who);
  }
}

function active(ban: Ban, now: number): boolean {
  return ban.until === 'infinity' || ban.until > now;
}

/**
 * The bans, kept in the compacted `banned` table so every process of an installation sees the
 * same list (a ban added on one gateway reaches the others through Kafka). Exact bans are one
 * map lookup per client; regular-expression and CIDR bans are checked one by one. An expired
 * ban is ignored at once and removed by `purgeExpired`.
 */
export class BanStore {
  /** Exact bans by key (clientid/, username/, peerhost/). */
  private readonly exact = new Map<string, Indexed>();
  /** Regular-expression and CIDR bans by key. */
  private readonly patterns = new Map<string, Indexed>();
  private readonly listeners = new Set<(ban: Ban) => void>();

  private constructor(
    private readonly table: Table,
    private readonly log: Logger,
  ) {}

  /** Opens the table (creating it), loads every ban and follows other processes' changes. */
  static async open(backbone: Backbone, log: Logger, tableName = BANNED_TABLE): Promise<BanStore> {
    await backbone.ensureTopics([{ name: tableName, cleanup: 'compact' }]);
    const table = await backbone.table(tableName);
    const store = new BanStore(table, log);
    const reader = new RecordReader(bannedCodec, tableName, log);
    for (const [key, value] of table.entries()) {
      const ban = reader.read(key, value, table.offsetOf(key));
      if (ban) store.indexOrSkip(ban);
    }
    table.onRemoteChange = (key, value, offset) => {
      if (value === null) return store.unindex(key);
      const ban = reader.read(key, value, offset);
      if (ban && store.indexOrSkip(ban)) store.added(ban);
    };
    return store;
  }

  /** Bans in the table, expired ones not yet purged included. */
  get size(): number {
    return this.exact.size + this.patterns.size;
  }

  /**
   * Adds (or replaces) a ban and writes it durably; clients it matches are refused from now on,
   * and `onAdded` listeners (the ban service, which disconnects matching clients) hear of it at once.
   * Throws ValidationError for an unknown `as`, an empty `who`, a bad pattern or block.
   */
  async add(input: BanInput): Promise<Ban> {
    if (!BANNED_AS.includes(input.as)) throw new ValidationError('INVALID_ARGUMENT', `ban: "as" must be one of ${BANNED_AS.join(', ')}, got "${String(input.as)}"`);
    if (typeof input.who !== 'string' || input.who.length === 0) throw new ValidationError('INVALID_ARGUMENT', 'ban: "who" must not be empty');
    const until = input.until ?? 'infinity';
    if (until !== 'infinity' && !Number.isSafeInteger(until)) throw new ValidationError('INVALID_ARGUMENT', 'ban: "until" must be seconds since the epoch or "infinity"');
    // An exact address is kept as the clients' addresses are compared: IPv4-mapped is plain IPv4.
    const who = input.as === 'peerhost' ? plainAddress(input.who) : input.who;
    const ban: Ban = { as: input.as, who, by: input.by ?? 'mgmt_api', reason: input.reason ?? '', at: input.at ?? nowSeconds(), until };
    this.index(compile(ban));
    this.added(ban);
    await this.table.set(bannedKey(ban.as, ban.who), bannedCodec.encode(ban));
    return ban;
  }

  /** Deletes a ban; false if there was none. */
  async delete(as: BannedAs, who: string): Promise<boolean> {
    const key = bannedKey(as, who);
    if (!this.exact.has(key) && !this.patterns.has(key)) return false;
    this.unindex(key);
    await this.table.delete(key);
    return true;
  }

  /** The ban of `as`/`who`, expired or not. */
  get(as: BannedAs, who: string): Ban | undefined {
    const key = bannedKey(as, who);
    return (this.exact.get(key) ?? this.patterns.get(key))?.ban;
  }

  /** Every ban still in force, exact ones first. */
  list(now = nowSeconds()): Ban[] {
    return [...this.exact.values(), ...this.patterns.values()].map((i) => i.ban).filter((b) => active(b, now));
  }

  /** The ban in force that matches the client, if any (`now` in seconds since the epoch). */
  isBanned(client: BannedClient, now = nowSeconds()): Ban | undefined {
    const host = plainAddress(client.peerhost);
    for (const key of [bannedKey('clientid', client.clientId), client.username === undefined ? undefined : bannedKey('username', client.username), bannedKey('peerhost', host)]) {
      const hit = key === undefined ? undefined : this.exact.get(key);
      if (hit && active(hit.ban, now)) return hit.ban;
    }
    for (const p of this.patterns.values()) if (active(p.ban, now) && matchOne(p, client, host)) return p.ban;
    return undefined;
  }

  /** Whether `ban` matches the client, expiry aside (the ban service's check of connected clients). */
  matches(ban: Ban, client: BannedClient): boolean {
    const i = this.patterns.get(bannedKey(ban.as, ban.who)) ?? compile(ban);
    return matchOne(i, client, plainAddress(client.peerhost));
  }

  /** Removes the expired bans from the table; returns how many. */
  async purgeExpired(now = nowSeconds()): Promise<number> {
    const expired = [...this.exact.entries(), ...this.patterns.entries()].filter(([, i]) => !active(i.ban, now)).map(([key]) => key);
    if (expired.length === 0) return 0;
    for (const key of expired) this.unindex(key);
    await this.table.apply(expired.map((key) => [key, null] as const));
    this.log.info({ expired: expired.length }, 'expired bans removed');
    return expired.length;
  }

  /** Calls `listener` with every ban added from now on, here or by another process; returns its remover. */
  onAdded(listener: (ban: Ban) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells the listeners of a ban in force (one already expired changes nothing). */
  private added(ban: Ban): void {
    if (!active(ban, nowSeconds())) return;
    for (const l of this.listeners) {
      try {
        l(ban);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'ban listener failed');
      }
    }
  }

  /** Indexes a ban read from the table; a pattern that no longer compiles is reported and skipped. */
  private indexOrSkip(ban: Ban): boolean {
    try {
      this.index(compile(ban));
      return true;
    } catch (err) {
      this.log.warn({ as: ban.as, who: ban.who, err: (err as Error).message }, 'ban skipped');
      return false;
    }
  }

  private index(i: Indexed): void {
    const key = bannedKey(i.ban.as, i.ban.who);
    (i.re || i.net ? this.patterns : this.exact).set(key, i);
  }

  private unindex(key: string): void {
    this.exact.delete(key);
    this.patterns.delete(key);
  }
}
