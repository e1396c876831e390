import type { Backbone, Table } from '@tributary/backbone';
import { NotFoundError, TributaryError, ValidationError } from '@tributary/common';
import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { AclRule, decide, rulesFromClaim } from '../acl';
import { unknownField } from '../provider-config';
import type { AuthzOutcome, AuthzSource, ProviderContext, ProviderSpec } from '../types';

/**
 * The `built_in_database` authorization source: rules per username, per client id and for all
 * clients in the backbone's compacted `auth_rules` table (keys `username:<u>`, `clientid:<c>`,
 * `all`), each value a list of rules in EMQX's API shape
 * `{permission, action, topic, qos?, retain?}`. The client's username rules are checked first,
 * then its client id's, then the rules for all; the first rule that matches decides.
 */

export const RULES_TABLE = 'auth_rules';

/** Whose rules: a username, a client id, or every client. */
export type RuleOwner = { username: string } | { clientid: string } | 'all';

/** A rule as the API and the table hold it (EMQX's shape). */
export interface StoredRule {
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
  qos?: number[];
  retain?: boolean | 'all';
}

/** One owner's rules, as {@link RuleStore.list} returns them. */
export interface RuleSet {
  owner: RuleOwner;
  rules: StoredRule[];
}

function keyOf(owner: RuleOwner): string {
  if (owner === 'all') return 'all';
  return 'username' in owner ? `username:${owner.username}` : `clientid:${owner.clientid}`;
}

function ownerOf(key: string): RuleOwner | undefined {
  if (key === 'all') return 'all';
  if (key.startsWith('username:')) return { username: key.slice(9) };
  if (key.startsWith('clientid:')) return { clientid: key.slice(9) };
  return undefined;
}

/**
 * The rules of the built-in database, for `tributary ctl` and the HTTP API. Rules are checked
 * when set (a bad rule is a ValidationError) and decoded once per change, not per request.
 */
export class RuleStore {
  /** Decoded rules by table key; rebuilt for a key when it changes here or in another process. */
  private readonly decoded = new Map<string, AclRule[]>();

  private constructor(
    readonly table: Table,
    private readonly changed: () => void,
  ) {
    for (const [key, value] of table.entries()) this.load(key, value);
    table.onRemoteChange = (key, value) => {
      this.load(key, value);
      this.changed();
    };
  }

  /** Opens the rules table (compacted); `changed` runs whenever rules change, here or elsewhere. */
  static async open(backbone: Backbone, changed: () => void): Promise<RuleStore> {
    await backbone.ensureTopics([{ name: RULES_TABLE, cleanup: 'compact' }]);
    return new RuleStore(await backbone.table(RULES_TABLE), changed);
  }

  /** Replaces an owner's rules (an empty list deletes them). A bad rule is a ValidationError naming it. */
  async set(owner: RuleOwner, rules: readonly StoredRule[]): Promise<void> {
    if (rules.length === 0) return this.table.has(keyOf(owner)) ? this.delete(owner) : undefined;
    try {
      rulesFromClaim(rules);
    } catch (err) {
      throw new ValidationError('INVALID_ARGUMENT', (err as Error).message.replace(/^acl/, 'rules'));
    }
    const key = keyOf(owner);
    const value = Buffer.from(JSON.stringify(rules));
    await this.table.set(key, value);
    this.load(key, value);
    this.changed();
  }

  /** Removes an owner's rules; none is a NotFoundError. */
  async delete(owner: RuleOwner): Promise<void> {
    const key = keyOf(owner);
    if (!this.table.has(key)) throw new NotFoundError('RULES_NOT_FOUND', `no rules for ${key}`);
    await this.table.delete(key);
    this.load(key, null);
    this.changed();
  }

  /** An owner's rules as stored ([] when none, or when the record cannot be read). */
  get(owner: RuleOwner): StoredRule[] {
    const value = this.table.get(keyOf(owner));
    if (!value) return [];
    try {
      const rules: unknown = JSON.parse(value.toString());
      return Array.isArray(rules) ? (rules as StoredRule[]) : [];
    } catch {
      return []; // a damaged record: it matches nothing either (load)
    }
  }

  /** Every owner's rules: all first, then usernames, then client ids, each sorted. */
  list(): RuleSet[] {
    const keys = [...this.table.entries()].map(([k]) => k).filter((k) => ownerOf(k) !== undefined);
    keys.sort((a, b) => (a === 'all' ? -1 : b === 'all' ? 1 : a < b ? -1 : a > b ? 1 : 0));
    return keys.map((k) => ({ owner: ownerOf(k)!, rules: this.get(ownerOf(k)!) }));
  }

  /** The decoded rules of one key (table key), [] when none. */
  rulesOf(key: string): readonly AclRule[] {
    return this.decoded.get(key) ?? [];
  }

  private load(key: string, value: Buffer | null): void {
    if (value === null) {
      this.decoded.delete(key);
      return;
    }
    try {
      this.decoded.set(key, rulesFromClaim(JSON.parse(value.toString())));
    } catch {
      // Not ours to crash on: a record another version wrote, or a damaged one. It matches nothing.
      this.decoded.delete(key);
    }
  }
}

/** The built_in_database source; `rules` is its store once started. */
export class BuiltinAuthzSource implements AuthzSource {
  readonly type = 'built_in_database';
  private store: RuleStore | undefined;

  constructor(private readonly ctx: ProviderContext) {}

  get rules(): RuleStore {
    if (!this.store) throw new TributaryError('INTERNAL_ERROR', 'the built_in_database source is not started');
    return this.store;
  }

  async start(): Promise<void> {
    this.store = await RuleStore.open(this.ctx.backbone, () => this.ctx.rulesChanged());
  }

  async stop(): Promise<void> {
    if (this.store) this.store.table.onRemoteChange = undefined;
  }

  authorize(client: ClientInfo, req: AuthorizeRequest): AuthzOutcome {
    const rules = this.rules;
    if (client.username !== undefined) {
      const d = decide(rules.rulesOf(`username:${client.username}`), client, req);
      if (d !== 'nomatch') return d;
    }
    const d = decide(rules.rulesOf(`clientid:${client.clientId}`), client, req);
    return d !== 'nomatch' ? d : decide(rules.rulesOf('all'), client, req);
  }
}

/** The ProviderSpec registered in AUTHZ_SOURCES: no fields of its own. */
export const builtinAuthzSpec: ProviderSpec<Record<string, never>, AuthzSource> = {
  parse: (raw) => unknownField(raw, []) ?? {},
  create: (_config, ctx) => new BuiltinAuthzSource(ctx),
};
