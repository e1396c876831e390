import type { ConnectionOptions } from 'node:tls';
import { type Logger, SinkError } from '@tributary/common';
import { type SslSpec, tlsOptions } from './fields';
import type { Template } from '../template';
import type { ValueMap } from '@tributary/rulesql';

/** EMQX's resource status of a connector. */
export type ConnectorStatus = 'connected' | 'connecting' | 'disconnected';

/** A connection to a remote system (`connectors.<type>.<name>`), shared by its actions and sources. */
export interface Connector {
  readonly type: string;
  readonly name: string;
  /** Opens the client. Never fails because the remote is down (status() says so and it reconnects); throws a ConfigError for unreadable ssl files. */
  start(): Promise<void>;
  /** Closes the client; sends in progress reject. Idempotent. */
  stop(): Promise<void>;
  /** The last known status (from the last check, request or connection event). */
  status(): ConnectorStatus;
  /** Checks the remote now (EMQX's health check, every resource_opts.health_check_interval) and gives the new status. */
  healthCheck(): Promise<ConnectorStatus>;
}

/** An action (`actions.<type>.<name>`): what rule outputs are sent to. */
export interface Sink {
  readonly id: string; // "<type>:<name>"
  /**
   * Delivers a batch in order; resolves once the remote accepted all of it. Rejects with a
   * SinkError (SINK_UNAVAILABLE): `retriable` (the default) when the remote is unavailable
   * (refused, timeout, HTTP 5xx/429, Kafka or PostgreSQL connection errors), and the caller keeps
   * the batch and retries it later (a part may have been delivered: at least once); `retriable:
   * false` for a permanent failure of these requests (HTTP 4xx other than 429, an SQL error), and
   * the caller counts them failed and moves on.
   */
  send(batch: readonly ValueMap[]): Promise<void>;
  /** What send would transmit for one request, rendered, without sending (for the rule-test API) */
  render(data: ValueMap): unknown;
}

/** A message a source received from its remote. */
export interface SourceMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  /** MQTT 5 properties with EMQX's printable names ('User-Property', 'Content-Type', ...); {} for 3.1.1. */
  pubProps: Record<string, unknown>;
  /** The remote's "host:port". */
  server: string;
  /** When it arrived (ms since the epoch). */
  receivedAt: number;
}

/** A source (`sources.<type>.<name>`): messages from a remote system feeding rules (`$sources/<type>:<name>`). */
export interface Source {
  readonly id: string;
  /** Subscribes; each message is passed to onMessage, and QoS 1/2 messages are acknowledged to the remote only after it resolves. */
  start(onMessage: (m: SourceMessage) => Promise<void>): Promise<void>;
  /**
   * Stops passing messages on; those whose onMessage has not resolved stay unacknowledged (the
   * remote redelivers them to a persistent session). MQTT: with clean_start false the session
   * keeps the subscription (messages wait for the next start), with clean_start true it is dropped.
   */
  stop(): Promise<void>;
}

/** What a connector may be given besides its spec. */
export interface ConnectorOptions {
  logger?: Logger;
  /** Relative ssl file names are resolved against it (default: the working directory). */
  dataDir?: string;
  /** Part of the MQTT client id (`<clientid_prefix><name>:<node>`); default: the host name. */
  node?: string;
}

/** What the connectors share: the spec, its name, the last known status, TLS options from its ssl block. */
export abstract class BaseConnector<S extends { readonly type: string; readonly name: string; readonly ssl: SslSpec }> implements Connector {
  abstract readonly type: string;
  readonly name: string;
  protected state: ConnectorStatus = 'disconnected';

  constructor(
    readonly spec: S,
    protected readonly opts: ConnectorOptions = {},
  ) {
    this.name = spec.name;
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract healthCheck(): Promise<ConnectorStatus>;

  status(): ConnectorStatus {
    return this.state;
  }

  /** Node TLS options of the ssl block (undefined when off); relative files are in opts.dataDir. */
  protected tls(host: string): ConnectionOptions | undefined {
    return tlsOptions(this.spec.ssl, { what: `connectors.${this.spec.type}.${this.name}`, ...(this.opts.dataDir ? { dataDir: this.opts.dataDir } : {}) }, host);
  }
}

/** A retriable SinkError (the remote is unavailable) naming the sink. */
export function unavailable(id: string, message: string, cause?: unknown): SinkError {
  return new SinkError('SINK_UNAVAILABLE', `${id}: ${message}`, cause === undefined ? {} : { cause });
}

/** A permanent SinkError (these requests can never succeed) naming the sink. */
export function rejected(id: string, message: string, cause?: unknown): SinkError {
  return new SinkError('SINK_UNAVAILABLE', `${id}: ${message}`, { retriable: false, ...(cause === undefined ? {} : { cause }) });
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/**
 * The bytes a payload-like template sends: a template that is one placeholder holding bytes
 * sends them as they are (a binary payload); anything else its rendering as UTF-8.
 */
export function bytesOf(t: Template, data: ValueMap): Buffer {
  if (t.placeholders.length === 1) {
    const v = t.value(data);
    if (Buffer.isBuffer(v)) return v;
    if (typeof v === 'string') return Buffer.from(v);
  }
  return Buffer.from(t.render(data));
}
