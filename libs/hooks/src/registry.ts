import type { Logger } from '@tributary/common';
import { TributaryError } from '@tributary/common';
import {
  ASYNC_POINTS,
  AuthenticateReply,
  AuthorizeReply,
  AuthorizeRequest,
  AuthResult,
  Awaitable,
  ClientInfo,
  Credentials,
  FAIL_CLOSED,
  FoldPoint,
  HookMessage,
  HookPoint,
  HookSignatures,
  isHookPoint,
  MESSAGE_POINTS,
  NotifyPoint,
  PublishContext,
  PublishReply,
  SubscribeReply,
  SubscribeRequest,
  UnsubscribeReply,
} from './points';
import { PRIORITIES, PriorityName } from './priorities';
import { TopicFilters } from './topic-filters';

export interface HookOptions {
  /** Who registers it: named in logs and metrics (a plugin's name, "rewrite", ...). */
  name: string;
  priority: PriorityName;
  /** Message points only: call it for these topic filters only (empty or absent = every topic). */
  topics?: readonly string[];
}

interface Callback {
  name: string;
  priority: number;
  seq: number;
  filters: TopicFilters | undefined;
  fn: (...args: never[]) => unknown;
}

export interface HookRegistryOptions {
  logger: Logger;
  /** Longest wait for an async callback (ms); then it counts as failed. */
  timeoutMs: number;
}

/** Counters of callbacks that threw or timed out, in total and per `<point>/<name>`. */
export interface HookCounters {
  'hooks.callbacks.failed': number;
  'hooks.callbacks.timeout': number;
}

/** A hook callback's failure: thrown when registering wrongly, or logged when a callback fails. */
export class HookError extends TributaryError {
  constructor(message: string, cause?: unknown) {
    super('HOOK_INVALID', message, { cause });
  }
}

const TIMED_OUT = Symbol('timed out');

/**
 * The hook registry (EMQX's emqx_hooks): a closed set of points (points.ts), callbacks in
 * priority order (priorities.ts), one typed runner per fold point. A callback that throws or
 * times out is logged with its name, counted, and skipped, or, at authenticate and authorize,
 * denies. With no callbacks, and with callbacks that answer synchronously, no promise is made.
 */
export class HookRegistry {
  private readonly points = new Map<HookPoint, Callback[]>();
  private seq = 0;
  readonly counters: HookCounters = { 'hooks.callbacks.failed': 0, 'hooks.callbacks.timeout': 0 };
  /** Failures per `<point>/<name>`. */
  readonly failures = new Map<string, number>();
  private readonly log: Logger;

  constructor(private readonly opts: HookRegistryOptions) {
    this.log = opts.logger;
  }

  /** Registers `fn` at `point`; returns a function that removes it. An unknown point throws. */
  add<P extends HookPoint>(point: P, opts: HookOptions, fn: HookSignatures[P]): () => void {
    if (!isHookPoint(point)) throw new HookError(`unknown hook point "${String(point)}" (registered by ${opts.name})`);
    const priority = PRIORITIES[opts.priority];
    if (priority === undefined) throw new HookError(`unknown hook priority "${String(opts.priority)}" (registered by ${opts.name})`);
    if (opts.topics?.length && !MESSAGE_POINTS.includes(point)) throw new HookError(`${opts.name}: topics apply to message.* hooks only, not ${point}`);
    const cb: Callback = { name: opts.name, priority, seq: this.seq++, filters: opts.topics?.length ? new TopicFilters(opts.topics) : undefined, fn: fn as Callback['fn'] };
    const list = [...(this.points.get(point) ?? []), cb].sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.points.set(point, list);
    return () => {
      const now = this.points.get(point)?.filter((c) => c !== cb) ?? [];
      if (now.length) this.points.set(point, now);
      else this.points.delete(point);
    };
  }

  /** True when anything is registered at `point` (cheap: check before building hook arguments). */
  has(point: HookPoint): boolean {
    return this.points.has(point);
  }

  /** True when a callback at message point `point` would see a message on `topic`. */
  wants(point: HookPoint, topic: string): boolean {
    const list = this.points.get(point);
    if (list === undefined || isSys(topic)) return false;
    for (let i = 0; i < list.length; i++) if (list[i]!.filters?.matches(topic) ?? true) return true;
    return false;
  }

  /** Names registered at a point, in the order they run (for operators and tests). */
  names(point: HookPoint): string[] {
    return (this.points.get(point) ?? []).map((c) => c.name);
  }

  /** Runs a notification point. Callbacks cannot change anything; one that fails is logged and skipped. */
  notify<P extends NotifyPoint>(point: P, ...args: Parameters<HookSignatures[P]>): void {
    const list = this.points.get(point);
    if (list === undefined) return;
    const topic = MESSAGE_POINTS.includes(point) ? messageTopic(point, args) : undefined;
    if (topic !== undefined && isSys(topic)) return;
    for (let i = 0; i < list.length; i++) {
      const cb = list[i]!;
      if (topic !== undefined && cb.filters && !cb.filters.matches(topic)) continue;
      try {
        const r = (cb.fn as (...a: unknown[]) => unknown)(...args);
        if (r instanceof Promise) r.catch((err: unknown) => this.failed(point, cb, err));
      } catch (err) {
        this.failed(point, cb, err);
      }
    }
  }

  /** client.authenticate, starting from `acc` (what the chain before it decided). */
  authenticate(cred: Credentials, acc: AuthResult): Awaitable<AuthResult> {
    return this.fold('client.authenticate', [cred], acc, (r: AuthenticateReply, a) => {
      if (r === undefined) return undefined;
      const { stop, ...result } = r as AuthResult & { stop?: true };
      return { acc: { ...a, ...result }, stop: stop === true };
    });
  }

  /**
   * client.authorize: 'allow' or 'deny', starting from `acc` (the no-match default). Then, when
   * anything listens, client.check_authz_complete with the decision and who made it (the
   * deciding reply's `from`; `default` when no callback answered, `unknown` for a reply without one).
   */
  authorize(client: ClientInfo, req: AuthorizeRequest, acc: 'allow' | 'deny'): Awaitable<'allow' | 'deny'> {
    if (!this.points.has('client.check_authz_complete')) {
      return this.fold('client.authorize', [client, req], acc, (r: AuthorizeReply) => (r === undefined ? undefined : { acc: r.result, stop: 'stop' in r && r.stop === true }));
    }
    let from = 'default';
    const decided = this.fold('client.authorize', [client, req], acc, (r: AuthorizeReply) => {
      if (r === undefined) return undefined;
      from = r.from ?? 'unknown';
      return { acc: r.result, stop: 'stop' in r && r.stop === true };
    });
    const complete = (result: 'allow' | 'deny'): 'allow' | 'deny' => {
      this.notify('client.check_authz_complete', client, req, result, from);
      return result;
    };
    return decided instanceof Promise ? decided.then(complete) : complete(decided);
  }

  /** client.subscribe: the filters of a SUBSCRIBE as the chain rewrites them. */
  subscribe(client: ClientInfo, filters: SubscribeRequest[]): SubscribeRequest[] {
    return this.fold('client.subscribe', [client], filters, (r: SubscribeReply) =>
      r === undefined ? undefined : Array.isArray(r) ? { acc: r, stop: false } : { acc: r.filters, stop: true },
    ) as SubscribeRequest[];
  }

  /** client.unsubscribe: the filters of an UNSUBSCRIBE as the chain rewrites them. */
  unsubscribe(client: ClientInfo, filters: string[]): string[] {
    return this.fold('client.unsubscribe', [client], filters, (r: UnsubscribeReply) =>
      r === undefined ? undefined : Array.isArray(r) ? { acc: r, stop: false } : { acc: r.filters, stop: true },
    ) as string[];
  }

  /** message.publish: the message to publish, or null when a callback dropped it. */
  publish(msg: HookMessage, ctx: PublishContext): Awaitable<HookMessage | null> {
    if (isSys(msg.topic)) return msg;
    return this.fold<'message.publish', HookMessage | null>(
      'message.publish',
      [],
      msg,
      (r: PublishReply) => {
        if (r === undefined) return undefined;
        if (!('stop' in r)) return { acc: r, stop: false };
        return 'drop' in r ? { acc: null, stop: true } : { acc: r.message, stop: true };
      },
      ctx,
    );
  }

  /**
   * Runs a fold point's callbacks from `start`: each gets the arguments, the accumulator (and
   * `extra`), and its reply is read by `step`. Synchronous replies keep the whole run synchronous.
   */
  private fold<P extends FoldPoint, A>(
    point: P,
    args: readonly unknown[],
    acc: A,
    step: (reply: never, acc: A) => { acc: A; stop: boolean } | undefined,
    extra?: unknown,
    start = 0,
  ): Awaitable<A> {
    const list = this.points.get(point);
    if (list === undefined) return acc;
    for (let i = start; i < list.length; i++) {
      const cb = list[i]!;
      if (cb.filters && !cb.filters.matches((acc as HookMessage | null)?.topic ?? '')) continue;
      let reply: unknown;
      try {
        reply = (cb.fn as (...a: unknown[]) => unknown)(...(point === 'message.publish' ? [acc, extra] : [...args, acc]));
      } catch (err) {
        this.failed(point, cb, err);
        if (FAIL_CLOSED.includes(point)) return this.closed(point, acc);
        continue;
      }
      if (reply instanceof Promise && !ASYNC_POINTS.includes(point)) {
        // client.subscribe and client.unsubscribe answer at once: a promise there is a callback's mistake.
        reply.catch(() => undefined);
        this.failed(point, cb, new HookError(`${cb.name} returned a promise at ${point}, which must answer synchronously`));
        continue;
      }
      if (reply instanceof Promise) {
        return this.within(reply).then(
          (r) => {
            if (r === TIMED_OUT) {
              this.timedOut(point, cb);
              return FAIL_CLOSED.includes(point) ? this.closed(point, acc) : this.fold(point, args, acc, step, extra, i + 1);
            }
            const s = step(r as never, acc);
            if (s?.stop || (s && s.acc === null)) return s.acc;
            return this.fold(point, args, s ? s.acc : acc, step, extra, i + 1);
          },
          (err: unknown) => {
            this.failed(point, cb, err);
            return FAIL_CLOSED.includes(point) ? this.closed(point, acc) : this.fold(point, args, acc, step, extra, i + 1);
          },
        );
      }
      const s = step(reply as never, acc);
      if (s === undefined) continue;
      acc = s.acc;
      if (s.stop || acc === null) return acc;
    }
    return acc;
  }

  /** The fail-closed outcome of authenticate and authorize. */
  private closed<A>(point: FoldPoint, acc: A): A {
    return (point === 'client.authorize' ? 'deny' : { ...(acc as AuthResult), result: 'deny' }) as A;
  }

  private within(p: Promise<unknown>): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.opts.timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  private failed(point: HookPoint, cb: Callback, err: unknown): void {
    this.counters['hooks.callbacks.failed']++;
    this.count(point, cb);
    this.log.error({ err, hook: point, callback: cb.name }, `hook callback ${cb.name} failed at ${point}; skipped${FAIL_CLOSED.includes(point) ? ' (denied)' : ''}`);
  }

  private timedOut(point: HookPoint, cb: Callback): void {
    this.counters['hooks.callbacks.timeout']++;
    this.count(point, cb);
    this.log.error({ hook: point, callback: cb.name, timeoutMs: this.opts.timeoutMs }, `hook callback ${cb.name} timed out at ${point}; skipped${FAIL_CLOSED.includes(point) ? ' (denied)' : ''}`);
  }

  private count(point: HookPoint, cb: Callback): void {
    const key = `${point}/${cb.name}`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }
}

/** `$SYS/` messages never reach message hooks (the exact topic `$SYS` does, as in EMQX). */
function isSys(topic: string): boolean {
  return topic.startsWith('$SYS/');
}

/** The topic of a message point's message argument (first for message.*, second for client-scoped ones). */
function messageTopic(point: HookPoint, args: readonly unknown[]): string {
  const msg = (point === 'message.dropped' ? args[0] : args[1]) as HookMessage;
  return msg.topic;
}
