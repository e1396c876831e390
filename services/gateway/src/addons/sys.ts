import type { Message } from '@tributary/mqtt';
import { newMessage } from '@tributary/mqtt';
import type { HookRegistry } from '@tributary/hooks';

export interface SysOptions {
  node: string;
  version: string;
  /** Milliseconds between stats/metrics publications (0 = off). */
  msgInterval: number;
  /** Milliseconds between uptime/datetime heartbeats (0 = off). */
  heartbeatInterval: number;
  stats(): Record<string, number>;
  metrics(): Record<string, number>;
  publish(msg: Message): Promise<unknown>;
}

/** Client details for `$SYS/brokers/<node>/clients/<clientid>/{connected,disconnected}` (EMQX's fields). */
export interface ClientEvent {
  clientid: string;
  username: string | null;
  ipaddress: string;
  proto_ver: number;
  keepalive?: number;
  clean_start?: boolean;
  expiry_interval?: number;
  connected_at?: number;
  disconnected_at?: number;
  reason?: string;
}

/**
 * The `$SYS` topic tree, EMQX's names: version and sysdescr (retained) once, uptime and datetime
 * per heartbeat, `stats/<a>/<b>` and `metrics/<a>/<b>` (dots become levels) per interval, and
 * client connected/disconnected events.
 */
export class SysPublisher {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();
  private readonly prefix: string;

  constructor(private readonly opts: SysOptions) {
    this.prefix = `$SYS/brokers/${opts.node}/`;
  }

  start(): void {
    const o = this.opts;
    this.emit('$SYS/brokers', o.node, true);
    this.emit(`${this.prefix}version`, o.version, true);
    this.emit(`${this.prefix}sysdescr`, 'Tributary: an MQTT broker on a Kafka backbone', true);
    this.heartbeat();
    this.statistics();
    if (o.heartbeatInterval > 0) this.timers.push(setInterval(() => this.heartbeat(), o.heartbeatInterval));
    if (o.msgInterval > 0) this.timers.push(setInterval(() => this.statistics(), o.msgInterval));
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }

  clientEvent(kind: 'connected' | 'disconnected', event: ClientEvent): void {
    // A client id with + or # would make a topic name with wildcards, which must never be sent [MQTT-3.3.2-2].
    if (/[+#]/.test(event.clientid)) return;
    this.emit(`${this.prefix}clients/${event.clientid}/${kind}`, JSON.stringify(event), false);
  }

  private heartbeat(): void {
    this.emit(`${this.prefix}uptime`, formatUptime(Date.now() - this.startedAt), false);
    this.emit(`${this.prefix}datetime`, new Date().toISOString(), false);
  }

  private statistics(): void {
    for (const [name, value] of Object.entries(this.opts.stats())) this.emit(`${this.prefix}stats/${name.replace(/\./g, '/')}`, String(value), false);
    for (const [name, value] of Object.entries(this.opts.metrics())) this.emit(`${this.prefix}metrics/${name.replace(/\./g, '/')}`, String(value), false);
  }

  private emit(topic: string, payload: string, retain: boolean): void {
    this.opts.publish(newMessage(topic, Buffer.from(payload), 0, retain, '')).catch(() => undefined);
  }
}

/** "1 days, 2 hours, 3 minutes, 4 seconds", EMQX's uptime format. */
export function formatUptime(ms: number): string {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [];
  if (d) parts.push(`${d} days`);
  if (d || h) parts.push(`${h} hours`);
  if (d || h || m) parts.push(`${m} minutes`);
  parts.push(`${s} seconds`);
  return parts.join(', ');
}

/** `$SYS` client events on the hooks (EMQX's emqx_sys): connected and disconnected, each switchable. */
export function registerSysEvents(hooks: HookRegistry, sys: SysPublisher, events: { client_connected: boolean; client_disconnected: boolean }): void {
  const opts = { name: 'sys', priority: 'sys' } as const;
  if (events.client_connected) {
    hooks.add('client.connected', opts, (c) =>
      sys.clientEvent('connected', {
        clientid: c.clientId,
        username: c.username ?? null,
        ipaddress: c.peerhost,
        proto_ver: c.protocolVersion,
        keepalive: c.keepalive,
        clean_start: c.cleanStart,
        expiry_interval: c.expiryInterval,
        connected_at: Date.now(),
      }),
    );
  }
  if (events.client_disconnected) {
    hooks.add('client.disconnected', opts, (c) =>
      sys.clientEvent('disconnected', { clientid: c.clientId, username: c.username ?? null, ipaddress: c.peerhost, proto_ver: c.protocolVersion, disconnected_at: Date.now() }),
    );
  }
}
