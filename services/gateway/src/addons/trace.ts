import { closeSync, mkdirSync, openSync, rmSync, statSync, writeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, ApiRoute } from '@tributary/api';
import { ConflictError, NotFoundError, type Logger } from '@tributary/common';
import type { ClientInfo, HookRegistry } from '@tributary/hooks';
import { topicMatches } from '@tributary/mqtt';

/**
 * EMQX's log trace (`/trace`): while a trace runs, the packet-level events of one client id, topic
 * filter or peer address (CONNECT, SUBSCRIBE, PUBLISH in and out, DISCONNECT) are written one line
 * each to `<dir>/<name>.log`: time, packet, client id, topic, QoS, payload size; never passwords
 * or payloads. Each running trace registers its own hooks and removes them when it stops, so with
 * no trace running the hot path pays nothing. A trace stops at end_at, on PUT .../stop, or when
 * its file reaches maxBytes.
 */

export type TraceType = 'clientid' | 'topic' | 'ip_address';
export type TraceStatus = 'waiting' | 'running' | 'stopped';

export interface TracesOptions {
  hooks: HookRegistry;
  /** Where trace files go: `<data_dir>/trace`. */
  dir: string;
  logger: Logger;
  /** The node name in log_size and log_detail. */
  node: string;
  /** A trace stops when its file would pass this size (bytes). Default 100 MB. */
  maxBytes?: number;
  /** A connected client's peer address (ip_address traces of PUBLISH, which carries no address). */
  peerhostOf?: (clientId: string) => string | undefined;
}

/** Default trace duration when end_at is not given: 10 minutes. */
export const DEFAULT_TRACE_MS = 10 * 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

interface Trace {
  name: string;
  type: TraceType;
  value: string;
  startAt: number;
  endAt: number;
  status: TraceStatus;
  reason: string | undefined;
  file: string;
  fd: number | undefined;
  bytes: number;
  timer: NodeJS.Timeout | undefined;
  unhook: (() => void)[];
}

const rfc3339 = (ms: number): string => new Date(ms).toISOString();
/** A value as it appears after `key=`: quoted when it has spaces, quotes or control characters. */
const v = (x: unknown): string => {
  const s = String(x);
  return /[\s"\\\p{Cc}]/u.test(s) || s === '' ? JSON.stringify(s) : s;
};

/** The traces of one node, and their HTTP routes. */
export class Traces {
  private readonly traces = new Map<string, Trace>();
  private readonly maxBytes: number;

  constructor(private readonly opts: TracesOptions) {
    this.maxBytes = opts.maxBytes ?? 100 * 1024 * 1024;
  }

  /** Starts (or schedules) a trace from a POST /trace body. */
  create(body: unknown, now = Date.now()): ReturnType<Traces['view']> {
    const b = (body ?? {}) as Record<string, unknown>;
    const name = b.name;
    if (typeof name !== 'string' || !NAME.test(name)) throw new ApiError(400, 'BAD_REQUEST', 'name: 1 to 64 of A-Z a-z 0-9 _ . -');
    const type = b.type;
    if (type !== 'clientid' && type !== 'topic' && type !== 'ip_address') throw new ApiError(400, 'BAD_REQUEST', 'type: clientid, topic or ip_address');
    const value = b[type];
    if (typeof value !== 'string' || value === '') throw new ApiError(400, 'BAD_REQUEST', `${type}: required with type ${type}`);
    const startAt = b.start_at === undefined ? now : timeOf(b.start_at, 'start_at');
    const endAt = b.end_at === undefined ? Math.max(startAt, now) + DEFAULT_TRACE_MS : timeOf(b.end_at, 'end_at');
    if (endAt <= now) throw new ApiError(400, 'BAD_REQUEST', 'end_at time has already passed');
    if (endAt <= startAt) throw new ApiError(400, 'BAD_REQUEST', 'end_at must be after start_at');
    if (this.traces.has(name)) throw new ConflictError('ALREADY_EXISTS', `trace ${name} already exists`);
    mkdirSync(this.opts.dir, { recursive: true });
    const t: Trace = { name, type, value, startAt, endAt, status: 'waiting', reason: undefined, file: join(this.opts.dir, `${name}.log`), fd: undefined, bytes: 0, timer: undefined, unhook: [] };
    rmSync(t.file, { force: true });
    this.traces.set(name, t);
    this.schedule(t, now);
    return this.view(t);
  }

  /** Every trace, as GET /trace answers. */
  list(): ReturnType<Traces['view']>[] {
    return [...this.traces.values()].map((t) => this.view(t));
  }

  /** Stops a trace (its file stays until DELETE). */
  stop(name: string, reason = 'stopped by request'): ReturnType<Traces['view']> {
    const t = this.get(name);
    this.end(t, reason);
    return this.view(t);
  }

  /** Stops and forgets a trace, and removes its file. */
  delete(name: string): void {
    const t = this.get(name);
    this.end(t, 'deleted');
    this.traces.delete(name);
    rmSync(t.file, { force: true });
  }

  /** Stops every trace (node shutdown); files stay. */
  close(): void {
    for (const t of this.traces.values()) this.end(t, 'node stopped');
  }

  /** The file's text. */
  download(name: string): string {
    const t = this.get(name);
    try {
      return readFileSync(t.file, 'utf8');
    } catch {
      return '';
    }
  }

  /** EMQX's log_detail: per node, the file's size and mtime (seconds). */
  detail(name: string): { node: string; size: number; mtime: number }[] {
    const t = this.get(name);
    try {
      const s = statSync(t.file);
      return [{ node: this.opts.node, size: s.size, mtime: Math.floor(s.mtimeMs / 1000) }];
    } catch {
      return [{ node: this.opts.node, size: 0, mtime: Math.floor(t.startAt / 1000) }];
    }
  }

  /** The /trace routes (EMQX's paths and shapes; download answers the log as text/plain, not a zip). */
  routes(): ApiRoute[] {
    return [
      { method: 'GET', path: '/trace', summary: 'Every trace with its status (waiting, running, stopped)', handler: () => ({ body: this.list() }) },
      { method: 'POST', path: '/trace', summary: 'Starts a trace: {name, type: clientid|topic|ip_address, <type>: value, start_at?, end_at?}', handler: (req) => ({ body: this.create(req.body) }) },
      {
        method: 'DELETE',
        path: '/trace',
        summary: 'Deletes every trace and its file',
        handler: () => {
          for (const name of [...this.traces.keys()]) this.delete(name);
          return {};
        },
      },
      { method: 'PUT', path: '/trace/:name/stop', summary: 'Stops a trace; its file stays', handler: (req) => ({ body: this.stop(req.params.name!) }) },
      {
        method: 'DELETE',
        path: '/trace/:name',
        summary: 'Deletes a trace and its file',
        handler: (req) => {
          this.delete(req.params.name!);
          return {};
        },
      },
      { method: 'GET', path: '/trace/:name/download', summary: "A trace's log file (text)", handler: (req) => ({ body: this.download(req.params.name!) }) },
      { method: 'GET', path: '/trace/:name/log_detail', summary: "A trace file's size and mtime", handler: (req) => ({ body: this.detail(req.params.name!) }) },
    ];
  }

  private get(name: string): Trace {
    const t = this.traces.get(name);
    if (!t) throw new NotFoundError('NOT_FOUND', `trace ${name} not found`);
    return t;
  }

  private view(t: Trace): { name: string; type: TraceType; status: TraceStatus; start_at: string; end_at: string; log_size: Record<string, number>; reason?: string } & Partial<Record<TraceType, string>> {
    return { name: t.name, type: t.type, [t.type]: t.value, status: t.status, start_at: rfc3339(t.startAt), end_at: rfc3339(t.endAt), log_size: { [this.opts.node]: t.bytes }, ...(t.reason ? { reason: t.reason } : {}) };
  }

  /** Arms the timer for the trace's next change: start (waiting) or end (running). */
  private schedule(t: Trace, now = Date.now()): void {
    clearTimeout(t.timer);
    if (t.status === 'waiting' && now >= t.startAt) this.begin(t);
    if (t.status === 'stopped') return;
    if (t.status === 'running' && now >= t.endAt) return this.end(t, 'end_at reached');
    const at = t.status === 'waiting' ? t.startAt : t.endAt;
    t.timer = setTimeout(() => this.schedule(t), Math.min(MAX_TIMER_MS, Math.max(0, at - now)));
    t.timer.unref();
  }

  private begin(t: Trace): void {
    t.fd = openSync(t.file, 'a');
    t.status = 'running';
    this.opts.logger.info({ trace: t.name, type: t.type, [t.type]: t.value }, 'trace started');
    this.hook(t);
  }

  private end(t: Trace, reason: string): void {
    clearTimeout(t.timer);
    if (t.status === 'stopped') return;
    for (const off of t.unhook.splice(0)) off();
    if (t.fd !== undefined) closeSync(t.fd);
    t.fd = undefined;
    t.status = 'stopped';
    t.reason = reason;
    this.opts.logger.info({ trace: t.name, reason, bytes: t.bytes }, 'trace stopped');
  }

  private write(t: Trace, packet: string, clientId: string, fields: Record<string, unknown>): void {
    if (t.fd === undefined) return;
    const rest = Object.entries(fields)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => ` ${k}=${v(x)}`)
      .join('');
    const line = Buffer.from(`${new Date().toISOString()} ${packet} clientid=${v(clientId)}${rest}\n`);
    if (t.bytes + line.length > this.maxBytes) {
      this.end(t, `file reached max size (${this.maxBytes} bytes)`);
      return;
    }
    writeSync(t.fd, line);
    t.bytes += line.length;
  }

  private hook(t: Trace): void {
    const h = this.opts.hooks;
    const opts = { name: `trace:${t.name}`, priority: 'trace' as const };
    const byClient = (c: ClientInfo): boolean => (t.type === 'clientid' ? c.clientId === t.value : t.type === 'ip_address' ? c.peerhost === t.value : false);
    const byTopic = (topic: string): boolean => t.type !== 'topic' || topicMatches(t.value, topic) || t.value === topic;
    const msgOpts = t.type === 'topic' ? { ...opts, topics: [t.value] } : opts;
    t.unhook.push(
      h.add('client.connected', opts, (c) => {
        if (byClient(c)) this.write(t, 'CONNECT', c.clientId, { username: c.username, peerhost: c.peerhost, proto_ver: c.protocolVersion, keepalive: c.keepalive, clean_start: c.cleanStart, expiry_interval: c.expiryInterval });
      }),
      h.add('client.disconnected', opts, (c, reason) => {
        if (byClient(c)) this.write(t, 'DISCONNECT', c.clientId, { reason });
      }),
      h.add('session.subscribed', opts, (c, filter, o) => {
        if (t.type === 'topic' ? byTopic(filter) : byClient(c)) this.write(t, 'SUBSCRIBE', c.clientId, { topic: filter, qos: o.qos });
      }),
      h.add('message.publish', msgOpts, (m) => {
        const ok = t.type === 'clientid' ? m.clientId === t.value : t.type === 'ip_address' ? this.opts.peerhostOf?.(m.clientId) === t.value : byTopic(m.topic);
        if (ok) this.write(t, 'PUBLISH_IN', m.clientId, { topic: m.topic, qos: m.qos, retain: m.retain, payload_size: m.payload.length });
        return undefined;
      }),
      h.add('message.delivered', msgOpts, (c, m) => {
        if (t.type === 'topic' ? byTopic(m.topic) : byClient(c)) this.write(t, 'PUBLISH_OUT', c.clientId, { topic: m.topic, qos: m.qos, retain: m.retain, payload_size: m.payload.length, from: m.clientId });
      }),
    );
  }
}

/** start_at/end_at: RFC3339, or seconds since the epoch (EMQX takes both). */
function timeOf(x: unknown, field: string): number {
  const ms = typeof x === 'number' ? x * 1000 : typeof x === 'string' ? (/^\d+$/.test(x) ? Number(x) * 1000 : Date.parse(x)) : NaN;
  if (!Number.isFinite(ms)) throw new ApiError(400, 'BAD_REQUEST', `${field}: RFC3339 or seconds since the epoch`);
  return ms;
}
