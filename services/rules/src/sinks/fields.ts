import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { bool, bytes, ConfigError, ConfigProblem, duration, type Infer, int, isLeaf, type Leaf, oneOf, str, type SchemaNode, TributaryError } from '@tributary/common';
import { compileSqlTemplate, compileTemplate } from '../template';

/**
 * The field walker of connectors, actions and sources: EMQX's config layout as a tree of
 * @tributary/common leaves (duration, bytes, int, ...), every problem naming its dotted field.
 */

/** A problem at a field path relative to where it was found (`parameters.method`). */
export class FieldProblem extends ConfigProblem {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(path ? `${path}: ${why}` : why);
  }

  /** The same problem seen from `prefix` (`connectors.http.hook1`). */
  under(prefix: string): FieldProblem {
    return new FieldProblem(this.path ? `${prefix}.${this.path}` : prefix, this.why);
  }
}

/** A node of a section: leaves, nested sections, or an open section (free keys). */
export type Fields = { readonly [key: string]: SchemaNode };

/** What a section accepts besides its fields: EMQX keys that are read and not used here. */
export interface SectionOptions {
  readonly ignored?: readonly string[];
}

const REQUIRED = new WeakSet<object>();
const UNUSED = new WeakSet<object>();
const IGNORED = new WeakMap<object, readonly string[]>();

/** A leaf that must be given (its default is never used). */
export function required<T>(leaf: Leaf<T>): Leaf<T> {
  const copy = { ...leaf };
  REQUIRED.add(copy);
  return copy;
}

/** An EMQX leaf that is parsed and checked but has no effect here (docs/rules-sinks.md lists it so). */
export function unused<T>(leaf: Leaf<T>): Leaf<T> {
  const copy = { ...leaf };
  UNUSED.add(copy);
  return copy;
}

/** Whether a leaf was made with required(). */
export function isRequired(leaf: Leaf<unknown>): boolean {
  return REQUIRED.has(leaf);
}

/** Whether a leaf was made with unused(). */
export function isUnused(leaf: Leaf<unknown>): boolean {
  return UNUSED.has(leaf);
}

/** The EMQX keys a section accepts without checking or using them (withIgnored). */
export function ignoredKeys(fields: Fields): readonly string[] {
  return IGNORED.get(fields) ?? [];
}

/** A nested section that also accepts the listed EMQX keys without using them. */
export function withIgnored<F extends Fields>(fields: F, ignored: readonly string[]): F {
  IGNORED.set(fields, ignored);
  return fields;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/**
 * `raw` checked against `fields`: defaults for what is missing, a FieldProblem for an unknown
 * key, a missing required leaf or a value its leaf refuses.
 */
export function parseSection<F extends Fields>(raw: unknown, fields: F): Infer<F> | FieldProblem {
  if (raw === undefined) raw = {};
  if (!isObject(raw)) return new FieldProblem('', 'expected an object');
  const ignored = IGNORED.get(fields) ?? [];
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(fields, key) && !ignored.includes(key)) return new FieldProblem(key, `unknown field (known: ${Object.keys(fields).join(', ')})`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(fields)) {
    const given = raw[key];
    if (isLeaf(node)) {
      if (given === undefined) {
        if (REQUIRED.has(node)) return new FieldProblem(key, 'required');
        out[key] = node.default;
        continue;
      }
      const v = node.parse(given);
      if (v instanceof FieldProblem) return v.under(key);
      if (v instanceof ConfigProblem) return new FieldProblem(key, v.message);
      out[key] = v;
    } else {
      const v = parseSection(given, node as Fields);
      if (v instanceof FieldProblem) return v.under(key);
      out[key] = v;
    }
  }
  return out as Infer<F>;
}

/** A leaf parsed by a nested section (for sections inside lists or unions). */
export function sectionLeaf<F extends Fields>(fields: F, doc: string): Leaf<Infer<F>> {
  const def = parseSection({}, fields);
  return { kind: 'leaf', default: (def instanceof ConfigProblem ? undefined : def) as Infer<F>, doc, parse: (raw) => parseSection(raw, fields) };
}

function leafOf<T>(def: T, doc: string, parse: (raw: unknown) => T | ConfigProblem): Leaf<T> {
  return { kind: 'leaf', default: def, doc, parse };
}

/** A string leaf that `check` accepts (a problem when it does not). */
export function checkedString(def: string, doc: string, check: (s: string) => ConfigProblem | undefined, expected = 'expected a string'): Leaf<string> {
  return leafOf(def, doc, (raw) => (typeof raw !== 'string' ? new ConfigProblem(expected) : (check(raw) ?? raw)));
}

/** A template (checked to compile; kept as its text). */
export function template(def: string, doc: string): Leaf<string> {
  return leafOf(def, doc, (raw) => {
    if (typeof raw !== 'string') return new ConfigProblem('expected a template string');
    try {
      compileTemplate(raw);
      return raw;
    } catch (err) {
      return new ConfigProblem((err as Error).message);
    }
  });
}

/** An SQL template (checked to compile into bind parameters; kept as its text). */
export function sqlTemplate(def: string, doc: string): Leaf<string> {
  return leafOf(def, doc, (raw) => {
    if (typeof raw !== 'string' || !raw.trim()) return new ConfigProblem('expected an SQL statement');
    try {
      compileSqlTemplate(raw);
      return raw;
    } catch (err) {
      return new ConfigProblem((err as Error).message);
    }
  });
}

/** A value given either directly (qos 1, retain true) or as a template ("${qos}"). */
export function valueOrTemplate<T extends number | boolean>(def: T | string, doc: string, check: (v: unknown) => v is T): Leaf<T | string> {
  const asTemplate = template('', doc);
  return leafOf<T | string>(def, doc, (raw) => (check(raw) ? raw : typeof raw === 'string' ? asTemplate.parse(raw) : new ConfigProblem(`expected a value or a template, got ${JSON.stringify(raw)}`)));
}

/** HTTP header names (RFC 9110 tokens) and what a header value may hold. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * An object of HTTP headers, names lower-cased; `templates` checks each value compiles (rendered
 * values are made safe when sent), else values must be valid header text.
 */
export function headerMap(def: Readonly<Record<string, string>>, doc: string, opts: { templates?: boolean } = {}): Leaf<Readonly<Record<string, string>>> {
  return leafOf(def, doc, (raw) => {
    if (!isObject(raw)) return new ConfigProblem('expected an object of strings');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') return new FieldProblem(k, 'expected a string');
      if (!HEADER_NAME.test(k)) return new FieldProblem(k, 'not an HTTP header name');
      if (!opts.templates && !HEADER_VALUE.test(v)) return new FieldProblem(k, 'a header value cannot hold line breaks or control characters');
      if (opts.templates) {
        const t = template('', doc).parse(v);
        if (t instanceof ConfigProblem) return new FieldProblem(k, t.message);
      }
      out[k.toLowerCase()] = v;
    }
    return out;
  });
}

/** A list whose items are parsed by `item` (a problem names the item's index). */
export function listOf<T>(def: T[], doc: string, item: Leaf<T>): Leaf<T[]> {
  return leafOf(def, doc, (raw) => {
    if (!Array.isArray(raw)) return new ConfigProblem('expected a list');
    const out: T[] = [];
    for (let i = 0; i < raw.length; i++) {
      const v = item.parse(raw[i]);
      if (v instanceof FieldProblem) return v.under(String(i));
      if (v instanceof ConfigProblem) return new FieldProblem(String(i), v.message);
      out.push(v);
    }
    return out;
  });
}

/** A duration that may be switched off: "infinity", "off", false (→ undefined) or a duration. */
export function optionalDuration(doc: string, min = 1): Leaf<number | undefined> {
  const d = duration(0, doc, min);
  return leafOf<number | undefined>(undefined, doc, (raw) => (raw === false || raw === 'infinity' || raw === 'off' ? undefined : d.parse(raw)));
}

/** A "host", "host:port" or "[v6]:port" address; `port` is used when none is given. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses an EMQX `server` address ("127.0.0.1:5432"); a problem when it is not one. */
export function parseHostPort(raw: string, defaultPort: number): HostPort | ConfigProblem {
  const m = /^\s*(?:\[([0-9a-fA-F:.]+)\]|([^:\s/[\]]+))(?::(\d+))?\s*$/.exec(raw);
  const port = m?.[3] === undefined ? defaultPort : Number(m[3]);
  if (!m || port < 1 || port > 65535) return new ConfigProblem(`expected "host" or "host:port", got ${JSON.stringify(raw)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** A `server` leaf: "host[:port]", kept as text (checked). */
export function server(def: string, doc: string, defaultPort: number): Leaf<string> {
  return checkedString(def, doc, (raw) => {
    const hp = parseHostPort(raw, defaultPort);
    return hp instanceof ConfigProblem ? hp : undefined;
  }, 'expected "host:port"');
}

// --- ssl -------------------------------------------------------------------------------------

/**
 * EMQX's client `ssl` block. verify defaults to verify_peer here (EMQX: verify_none): a TLS
 * connection checks the server unless told not to. Files may be paths (relative to the data
 * directory) or PEM text. depth, reuse_sessions, secure_renegotiate, hibernate_after, log_level
 * and the like are accepted and not used.
 */
export const sslFields = withIgnored(
  {
    enable: bool(false, 'Connect with TLS.'),
    verify: oneOf(['verify_peer', 'verify_none'], 'verify_peer', 'verify_peer checks the server certificate against cacertfile (or the system CAs) and its name.'),
    cacertfile: str('', 'CA certificates (a path or PEM text); empty: the system CAs.'),
    certfile: str('', 'Client certificate (a path or PEM text), for mutual TLS.'),
    keyfile: str('', 'Client private key (a path or PEM text).'),
    password: str('', 'Passphrase of keyfile.'),
    server_name_indication: str('', 'Server name sent and verified; "disable" sends none; empty: the host.'),
    versions: listOf<string>([], 'TLS versions allowed (tlsv1.2, tlsv1.3); empty: the defaults.', oneOf(['tlsv1.3', 'tlsv1.2', 'tlsv1.1', 'tlsv1'], 'tlsv1.3', 'a TLS version')),
    ciphers: listOf<string>([], 'OpenSSL cipher names; empty: the defaults.', str('', 'a cipher')),
  },
  ['depth', 'reuse_sessions', 'secure_renegotiate', 'hibernate_after', 'log_level', 'middlebox_comp_mode', 'partial_chain', 'verify_peer_ext_key_usage', 'user_lookup_fun', 'enable_crl_check'],
);

export type SslSpec = Infer<typeof sslFields>;

const TLS_VERSION = { tlsv1: 'TLSv1', 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' } as const;

/** Where relative ssl files are found, and who asks (for error messages). */
export interface FileContext {
  readonly dataDir?: string;
  readonly what: string;
}

function pem(value: string, ctx: FileContext, field: string): string {
  if (value.includes('-----BEGIN')) return value;
  const path = isAbsolute(value) || !ctx.dataDir ? value : join(ctx.dataDir, value);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${ctx.what}.ssl.${field}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Node TLS options for an ssl block, or undefined when TLS is off. Throws a ConfigError for an unreadable file. */
export function tlsOptions(ssl: SslSpec, ctx: FileContext, host: string): ConnectionOptions | undefined {
  if (!ssl.enable) return undefined;
  const versions = ssl.versions.map((v) => TLS_VERSION[v as keyof typeof TLS_VERSION]).sort();
  const sni = ssl.server_name_indication;
  return {
    rejectUnauthorized: ssl.verify === 'verify_peer',
    ...(ssl.cacertfile ? { ca: pem(ssl.cacertfile, ctx, 'cacertfile') } : {}),
    ...(ssl.certfile ? { cert: pem(ssl.certfile, ctx, 'certfile') } : {}),
    ...(ssl.keyfile ? { key: pem(ssl.keyfile, ctx, 'keyfile') } : {}),
    ...(ssl.password ? { passphrase: ssl.password } : {}),
    ...(sni === 'disable' ? {} : { servername: sni || (/^[\d.]+$|:/.test(host) ? undefined : host) }),
    ...(versions.length ? { minVersion: versions[0], maxVersion: versions[versions.length - 1] } : {}),
    ...(ssl.ciphers.length ? { ciphers: ssl.ciphers.join(':') } : {}),
  };
}

// --- resource_opts ---------------------------------------------------------------------------

/**
 * An action's or source's `resource_opts`, EMQX's buffer-worker settings (the buffer worker uses
 * them; sinks only expose them). request_ttl is off by default here (EMQX: 45s): a request
 * waits for its remote however long the outage lasts, bounded by the buffer limits, instead of
 * being dropped after the publisher was acknowledged. max_buffer_messages is ours.
 */
export const actionResourceFields = withIgnored(
  {
    batch_size: int(1, 'Requests sent together (one HTTP request each; one Kafka produce, one SQL statement or transaction).', 1, 10_000),
    batch_time: unused(duration(0, 'EMQX: how long a batch may wait to fill up (here a batch is what the buffer holds when the sink is ready).', 0, 3_600_000)),
    request_ttl: optionalDuration('How long a request may wait before it is dropped (dropped.expired); off by default.'),
    inflight_window: int(100, 'Batches sent and not yet answered, at most; 1 delivers strictly in order, more may be answered out of order (as in EMQX).', 1, 100_000),
    max_buffer_bytes: bytes(256 * 1024 ** 2, 'Buffered bytes at most; over it the oldest requests are dropped (dropped.queue_full).', 1),
    max_buffer_messages: int(1_000_000, 'Buffered requests at most (ours); over it the oldest are dropped.', 1),
    health_check_interval: duration(15_000, 'While the sink is unavailable: the longest wait between two tries of its oldest batch (the back-off starts at 100 ms and doubles up to this, at most 5 s).', 1, 3_600_000),
    worker_pool_size: unused(int(16, 'EMQX: buffer workers (here one worker per sink, with inflight_window batches in flight).', 1, 1024)),
    start_timeout: unused(duration(5_000, 'EMQX: how long start waits for the remote (here start never waits for it).', 1, 3_600_000)),
    query_mode: unused(oneOf(['async', 'sync'], 'async', 'EMQX query mode.')),
    buffer_mode: unused(oneOf(['memory_only', 'volatile_offload'], 'memory_only', 'EMQX buffer mode (here the buffer is always a durable topic on the backbone).')),
  },
  ['auto_restart_interval', 'request_timeout', 'resume_interval', 'buffer_seg_bytes', 'metrics_flush_interval', 'start_after_created', 'max_batch_bytes'],
);

export type ResourceOpts = Infer<typeof actionResourceFields>;

/** A connector's `resource_opts`. */
export const connectorResourceFields = withIgnored(
  {
    health_check_interval: duration(15_000, 'How often the connector checks its remote (HTTP: a TCP connect; Kafka: cluster metadata; PostgreSQL: SELECT 1; MQTT: the client state); the status shows in /connectors, and a sink waiting for the remote retries at once when it is back.', 1, 3_600_000),
    start_timeout: unused(duration(5_000, 'EMQX: how long start waits for the remote (here start never waits for it).', 1, 3_600_000)),
    start_after_created: unused(bool(true, 'EMQX: start the connector when it is created (here an enabled connector always starts with the process).')),
  },
  ['auto_restart_interval'],
);

export type ConnectorResourceOpts = Infer<typeof connectorResourceFields>;

/** Fields every connector has besides its own. */
export const connectorCommon = {
  enable: bool(true, 'Whether the connector runs.'),
  description: str('', 'Free text.'),
  resource_opts: connectorResourceFields,
};

/** Fields every action has besides parameters. */
export const actionCommon = {
  connector: required(str('', 'The name of the connector (of the same type) the action uses.', { nonEmpty: true })),
  enable: bool(true, 'Whether the action runs.'),
  description: str('', 'Free text.'),
  local_topic: unused(str('', 'EMQX: messages on topics matching this filter go to the action without a rule (not supported: use a rule).')),
  resource_opts: actionResourceFields,
};

/** Fields every source has besides parameters. */
export const sourceCommon = {
  connector: required(str('', 'The name of the mqtt connector the source subscribes through.', { nonEmpty: true })),
  enable: bool(true, 'Whether the source runs.'),
  description: actionCommon.description,
  resource_opts: actionResourceFields,
};

/** Errors thrown by a parse step (a compile of a template) become problems of the field. */
export function problemOf(err: unknown, path: string): FieldProblem {
  return new FieldProblem(path, err instanceof TributaryError || err instanceof Error ? err.message : String(err));
}
