import type { ApiRoute } from '@tributary/api';
import type { Backbone } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import type { AuthenticateReply, AuthorizeReply, AuthorizeRequest, ClientInfo, Credentials, HookRegistry } from '@tributary/hooks';
import { RC } from '@tributary/mqtt';
import { AclRule, decide } from './acl';
import { authenticationRoutes, builtinRulesRoutes } from './api';
import type { AuthConfig } from './config';
import { AUTHENTICATORS, AUTHZ_SOURCES } from './providers';
import type { Authenticator, AuthnOutcome, AuthzOutcome, AuthzSource, ProviderContext } from './types';

export interface AuthServiceOptions {
  config: AuthConfig;
  backbone: Backbone;
  hooks: HookRegistry;
  logger: Logger;
  nodeName: string;
  dataDir: string;
  /** Disconnects a connected client (deny_action = disconnect). */
  kick?: (clientId: string, reasonCode: number) => void;
}

/** EMQX's authentication and authorization counters (authorization.deny is the broker's). */
export interface AuthMetrics {
  'authentication.success': number;
  'authentication.success.anonymous': number;
  'authentication.failure': number;
  'authorization.allow': number;
  'authorization.nomatch': number;
  'authorization.cache_hit': number;
}

interface CacheEntry {
  decision: 'allow' | 'deny';
  at: number;
}

interface ClientCache {
  generation: number;
  entries: Map<string, CacheEntry>;
}

/**
 * The `authentication` chain and the `authorization` sources on the hooks: client.authenticate
 * at the authn priority, client.authorize at authz. An authenticator that ignores a client passes
 * it to the next; a client every authenticator ignores is refused (0x87). With an empty chain
 * nothing is registered and every client is allowed, as EMQX does. Authorization checks the
 * client's own rules (a JWT's `acl` claim) first, then each source in order, then `no_match`.
 */
export class AuthService {
  readonly authenticators: Authenticator[] = [];
  readonly sources: AuthzSource[] = [];
  readonly metrics: AuthMetrics = {
    'authentication.success': 0,
    'authentication.success.anonymous': 0,
    'authentication.failure': 0,
    'authorization.allow': 0,
    'authorization.nomatch': 0,
    'authorization.cache_hit': 0,
  };
  private readonly cache = new WeakMap<ClientInfo, ClientCache>();
  /** Bumped when any rule changes: older cache entries are stale. */
  private generation = 0;
  private readonly removers: (() => void)[] = [];

  constructor(private readonly opts: AuthServiceOptions) {}

  async start(): Promise<void> {
    const { config, logger } = this.opts;
    const ctx: ProviderContext = {
      backbone: this.opts.backbone,
      logger,
      nodeName: this.opts.nodeName,
      dataDir: this.opts.dataDir,
      rulesChanged: () => this.rulesChanged(),
    };
    for (const item of config.authentication) {
      if (!item.enable) continue;
      const a = AUTHENTICATORS[item.id]!.create(item.config, ctx);
      await a.start?.();
      this.authenticators.push(a);
    }
    for (const item of config.authorization.sources) {
      if (!item.enable) continue;
      const s = AUTHZ_SOURCES[item.type]!.create(item.config, ctx);
      await s.start?.();
      this.sources.push(s);
    }
    const hooks = this.opts.hooks;
    if (this.authenticators.length) this.removers.push(hooks.add('client.authenticate', { name: 'authentication', priority: 'authn' }, (cred) => this.authenticate(cred)));
    // Without sources, a no_match of allow and no authenticator to give clients rules, every request
    // is allowed: nothing is registered, and publishes skip authorization altogether.
    if (this.sources.length || config.authorization.no_match === 'deny' || this.authenticators.some((a) => a.grantsAcl)) {
      this.removers.push(hooks.add('client.authorize', { name: 'authorization', priority: 'authz' }, (client, req) => this.authorize(client, req)));
    }
    logger.info({ authentication: this.authenticators.map((a) => a.id), authorization: this.sources.map((s) => s.type), no_match: config.authorization.no_match }, 'authentication and authorization ready');
  }

  async stop(): Promise<void> {
    for (const remove of this.removers.splice(0)) remove();
    for (const p of [...this.authenticators, ...this.sources]) await p.stop?.();
  }

  /** The HTTP API routes of authentication and authorization (users, bans ...). */
  routes(): ApiRoute[] {
    return [...authenticationRoutes(this.authenticators), ...builtinRulesRoutes(this.sources)];
  }

  /** Some rules changed: every cached decision is stale. */
  rulesChanged(): void {
    this.generation++;
  }

  // --- authentication --------------------------------------------------------------------

  private authenticate(cred: Credentials, from = 0): AuthenticateReply | Promise<AuthenticateReply> {
    for (let i = from; i < this.authenticators.length; i++) {
      const a = this.authenticators[i]!;
      // Password authenticators ignore an enhanced-authentication exchange; each enhanced one runs its methods only.
      if (cred.authMethod === undefined ? a.methods !== undefined : !a.methods?.includes(cred.authMethod)) continue;
      let out;
      try {
        out = a.authenticate(cred);
      } catch (err) {
        this.authenticatorFailed(a, err);
        continue;
      }
      if (out instanceof Promise) {
        return out.then(
          (o) => (o.result === 'ignore' ? this.authenticate(cred, i + 1) : this.outcome(a, cred, o)),
          (err) => {
            this.authenticatorFailed(a, err);
            return this.authenticate(cred, i + 1);
          },
        );
      }
      if (out.result !== 'ignore') return this.outcome(a, cred, out);
    }
    // Every authenticator ignored the client. An unknown method stays with the enhanced-auth
    // providers after this one (or its 0x8C refusal); anyone else is refused.
    if (cred.authMethod !== undefined) return undefined;
    this.metrics['authentication.failure']++;
    this.opts.logger.debug({ clientId: cred.clientId, username: cred.username }, 'no authenticator accepted the client');
    return { stop: true, result: 'deny', reasonCode: RC.NOT_AUTHORIZED };
  }

  /** An authenticator that throws or fails is skipped, as if it ignored the client (EMQX: next authenticator). */
  private authenticatorFailed(a: Authenticator, err: unknown): void {
    this.opts.logger.warn({ err: (err as Error)?.message ?? String(err), authenticator: a.id }, 'authenticator failed; trying the next');
  }

  private outcome(a: Authenticator, cred: Credentials, o: Exclude<AuthnOutcome, { result: 'ignore' }>): AuthenticateReply {
    if (o.result === 'continue') return { stop: true, result: 'continue', authData: o.authData };
    if (o.result === 'deny') {
      this.metrics['authentication.failure']++;
      this.opts.logger.debug({ clientId: cred.clientId, username: cred.username, authenticator: a.id }, 'authentication denied');
      // Wrong credentials of a password authenticator: 0x86; an enhanced exchange that failed: 0x87.
      return { stop: true, result: 'deny', reasonCode: o.reasonCode ?? (a.methods ? RC.NOT_AUTHORIZED : RC.BAD_USERNAME_OR_PASSWORD) };
    }
    this.metrics['authentication.success']++;
    return { stop: true, result: 'allow', isSuperuser: o.isSuperuser === true, acl: o.acl, expireAt: o.expireAt, authData: o.authData, clientAttrs: o.clientAttrs };
  }

  // --- authorization ---------------------------------------------------------------------

  private authorize(client: ClientInfo, req: AuthorizeRequest): AuthorizeReply | Promise<AuthorizeReply> {
    const cached = this.cached(client, req);
    if (cached) {
      this.metrics['authorization.cache_hit']++;
      return this.finish(client, req, cached, false, 'cache');
    }
    if (client.acl) {
      const d = decide(client.acl as AclRule[], client, req);
      if (d !== 'nomatch') return this.finish(client, req, d, true, 'client_info');
    }
    return this.fromSources(client, req, 0);
  }

  private fromSources(client: ClientInfo, req: AuthorizeRequest, from: number): AuthorizeReply | Promise<AuthorizeReply> {
    for (let i = from; i < this.sources.length; i++) {
      const s = this.sources[i]!;
      let out: AuthzOutcome | Promise<AuthzOutcome>;
      try {
        out = s.authorize(client, req);
      } catch (err) {
        this.sourceFailed(s, err);
        continue;
      }
      if (out instanceof Promise) {
        return out.then(
          (d) => (d === 'nomatch' ? this.fromSources(client, req, i + 1) : this.finish(client, req, d, true, s.type)),
          (err) => {
            this.sourceFailed(s, err);
            return this.fromSources(client, req, i + 1);
          },
        );
      }
      if (out !== 'nomatch') return this.finish(client, req, out, true, s.type);
    }
    this.metrics['authorization.nomatch']++;
    return this.finish(client, req, this.opts.config.authorization.no_match, true, 'default');
  }

  /** A source that fails or times out is skipped (EMQX: nomatch, the next source decides). */
  private sourceFailed(s: AuthzSource, err: unknown): void {
    this.opts.logger.warn({ err: (err as Error)?.message ?? String(err), source: s.type }, 'authorization source failed; trying the next');
  }

  /** `from` is who decided, EMQX's authz_source (client.check_authz_complete): `cache`, `client_info`, a source's type, `default`. */
  private finish(client: ClientInfo, req: AuthorizeRequest, decision: 'allow' | 'deny', store: boolean, from: string): AuthorizeReply {
    if (store) this.store(client, req, decision);
    // Denials are the broker's authorization.deny (the channel counts every one, whoever denied).
    if (decision === 'allow') this.metrics['authorization.allow']++;
    if (decision === 'deny' && this.opts.config.authorization.deny_action === 'disconnect' && this.opts.kick) {
      const kick = this.opts.kick;
      // After the channel has answered the packet (PUBACK/SUBACK 0x87): then the connection closes.
      setImmediate(() => kick(client.clientId, RC.NOT_AUTHORIZED));
    }
    return { stop: true, result: decision, from };
  }

  private cacheKey(req: AuthorizeRequest): string {
    return `${req.action === 'publish' ? 'p' : 's'}${req.qos}${req.retain ? 1 : 0}${req.topic}`;
  }

  private cached(client: ClientInfo, req: AuthorizeRequest): 'allow' | 'deny' | undefined {
    const c = this.opts.config.authorization.cache;
    if (!c.enable) return undefined;
    const mine = this.cache.get(client);
    if (!mine || mine.generation !== this.generation) return undefined;
    const e = mine.entries.get(this.cacheKey(req));
    if (!e) return undefined;
    if (Date.now() - e.at > c.ttl) {
      mine.entries.delete(this.cacheKey(req));
      return undefined;
    }
    return e.decision;
  }

  private store(client: ClientInfo, req: AuthorizeRequest, decision: 'allow' | 'deny'): void {
    const c = this.opts.config.authorization.cache;
    if (!c.enable) return;
    let mine = this.cache.get(client);
    if (!mine || mine.generation !== this.generation) {
      mine = { generation: this.generation, entries: new Map() };
      this.cache.set(client, mine);
    }
    if (mine.entries.size >= c.max_size) mine.entries.delete(mine.entries.keys().next().value!);
    mine.entries.set(this.cacheKey(req), { decision, at: Date.now() });
  }
}
