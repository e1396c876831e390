/** What an error may carry besides its code and message. */
export interface ErrorDetails {
  cause?: unknown;
  /** True when the same operation may succeed if tried again. */
  retriable?: boolean;
  /** The MQTT reason code a client should see, where one applies. */
  reasonCode?: number;
  /** The HTTP status the API answers with, where one applies. */
  status?: number;
}

/** The class each code is thrown as; one category per subclass below. */
export type Category = 'internal' | 'config' | 'validation' | 'not_found' | 'conflict' | 'startup' | 'backbone' | 'session' | 'protocol' | 'plugin' | 'sink';

interface CodeSpec {
  readonly category: Category;
  /** The HTTP status the API answers with. */
  readonly status: number;
  /** Present when a retry of the same operation may succeed. */
  readonly retriable?: true;
  /** When it is thrown. */
  readonly doc: string;
}

/**
 * Every code Tributary throws, once: its class, HTTP status and whether a retry may succeed. The
 * HTTP API maps errors through this table ({@link httpErrorOf}); operators and clients match on
 * codes, never on messages. A new code is added here first, then thrown.
 */
export const ERROR_CODES = {
  INTERNAL_ERROR: { category: 'internal', status: 500, doc: 'an invariant broke (a bug), or a thrown value carries no code' },
  CONFIG_INVALID: { category: 'config', status: 400, doc: 'a configuration value is invalid, inconsistent with another, or names a file that cannot be read' },
  INVALID_ARGUMENT: { category: 'validation', status: 400, doc: 'a function or command was given an option it does not accept' },
  TOPIC_NAME_INVALID: { category: 'validation', status: 400, doc: 'a backbone topic name has characters or a length the backbone does not allow' },
  RECORD_TOO_LARGE: { category: 'validation', status: 413, doc: 'a backbone record is larger than the log can frame' },
  USER_NOT_FOUND: { category: 'not_found', status: 404, doc: 'a user of the built-in authentication database does not exist' },
  RULES_NOT_FOUND: { category: 'not_found', status: 404, doc: 'a username, client id or "all" has no rules in the built-in authorization database' },
  USER_EXISTS: { category: 'conflict', status: 409, doc: 'a user of the built-in authentication database is added twice' },
  AUTH_METHOD_REGISTERED: { category: 'conflict', status: 409, doc: 'an enhanced-authentication method is registered twice' },
  ALREADY_EXISTS: { category: 'conflict', status: 409, doc: 'a user, ban or rule to create exists already (EMQX: ALREADY_EXISTS)' },
  SQL_PARSE_ERROR: { category: 'validation', status: 400, doc: 'a rule SQL statement does not parse; the message names the line and column' },
  SQL_EVAL_ERROR: { category: 'validation', status: 400, doc: "a rule SQL statement failed while evaluating (EMQX's failed.exception; the message names the reason, e.g. bad_sql_function_argument)" },
  SQL_NOT_MATCH: { category: 'validation', status: 412, doc: 'a rule test whose FROM or WHERE did not match the given context (EMQX: NOT_MATCH)' },
  RULE_NOT_FOUND: { category: 'not_found', status: 404, doc: 'a rule id of the rule engine does not exist (EMQX: RULE_NOT_FOUND)' },
  SINK_UNAVAILABLE: { category: 'sink', status: 503, retriable: true, doc: 'a sink (webhook, Kafka, PostgreSQL, MQTT bridge) did not accept a request; it stays buffered and is retried' },
  NOT_FOUND: { category: 'not_found', status: 404, doc: 'a user, ban, authenticator or other named thing does not exist' },
  LISTENER_BIND_FAILED: { category: 'startup', status: 500, doc: 'a listener cannot bind its address (in use, not permitted)' },
  DATA_DIR_UNAVAILABLE: { category: 'startup', status: 500, doc: 'the data directory cannot be created' },
  DATA_DIR_LOCKED: { category: 'startup', status: 409, doc: 'the data directory is already open, in this or another process' },
  BACKBONE_NOT_RUNNING: { category: 'backbone', status: 503, doc: 'the backbone, a topic, table or consumer is used before start() or after stop()' },
  BACKBONE_UNAVAILABLE: { category: 'backbone', status: 503, retriable: true, doc: 'Kafka did not answer (offsets, partition leaders) within the deadline' },
  BACKBONE_STALLED: { category: 'backbone', status: 503, retriable: true, doc: 'Kafka acknowledged no append for backbone.kafka.stall_timeout: appends fail until it answers again (docs/kafka.md, "Faults")' },
  BACKBONE_CORRUPT: { category: 'backbone', status: 500, doc: "the embedded log's files do not read as they were written" },
  RECORD_INVALID: { category: 'backbone', status: 500, doc: 'a record read from the backbone is not in the format its reader expects' },
  SESSION_TAKEN_OVER: { category: 'session', status: 409, retriable: true, doc: 'another connection claimed the session while this one was opening it' },
  PROTOCOL_VIOLATION: { category: 'protocol', status: 400, doc: 'an MQTT client broke the protocol; the reason code says how' },
  MALFORMED_PACKET: { category: 'protocol', status: 400, doc: 'an MQTT packet cannot be parsed (reason code 0x81)' },
  PLUGIN_INVALID: { category: 'plugin', status: 500, doc: 'a plugin cannot be loaded or started (libs/hooks)' },
  HOOK_INVALID: { category: 'plugin', status: 500, doc: 'a hook is registered on an unknown point or priority (libs/hooks)' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
/** The codes a category's class may be thrown with. */
export type CodeOf<C extends Category> = { [K in ErrorCode]: (typeof ERROR_CODES)[K]['category'] extends C ? K : never }[ErrorCode];

function specOf(code: string): CodeSpec | undefined {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined;
}

/**
 * The base of every error Tributary throws: a stable `code` to match on (never the message),
 * whether a retry may succeed, the cause, and where it applies an MQTT reason code or HTTP status.
 * `retriable` and `status` default to the code's row in {@link ERROR_CODES}.
 */
export class TributaryError extends Error {
  readonly retriable: boolean;
  readonly reasonCode: number | undefined;
  readonly status: number | undefined;

  constructor(
    readonly code: string,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    const spec = specOf(code);
    this.retriable = details.retriable ?? spec?.retriable ?? false;
    this.reasonCode = details.reasonCode;
    this.status = details.status ?? spec?.status;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Only a cause: the code fixes the rest. */
export type Cause = Pick<ErrorDetails, 'cause'>;

/**
 * A configuration error names the key and the environment variable that sets it. loadConfig
 * lists every problem it found; a single problem found later (a listener's TLS files, the roles
 * a node may run as) is the whole message.
 */
export class ConfigError extends TributaryError {
  readonly problems: string[];

  constructor(problems: string[] | string, details: Cause = {}) {
    super('CONFIG_INVALID', typeof problems === 'string' ? problems : `invalid configuration:\n  ${problems.join('\n  ')}`, details);
    this.problems = typeof problems === 'string' ? [problems] : problems;
  }
}

/**
 * The base of a category's class: thrown only with that category's codes, so a ValidationError
 * can never carry a backbone code (checked by the compiler against {@link ERROR_CODES}).
 */
function categoryError<C extends Category>() {
  return class extends TributaryError {
    constructor(code: CodeOf<C>, message: string, details: Cause = {}) {
      super(code, message, details);
    }
  };
}

/**
 * A sink of the rule engine (webhook, Kafka, PostgreSQL, MQTT bridge) did not take a request.
 * Retriable by default: the remote is unavailable and the request stays buffered. `retriable:
 * false` marks a permanent failure of these requests (an HTTP 4xx, an SQL error): retrying them
 * cannot help, so the caller counts them failed and moves on.
 */
export class SinkError extends TributaryError {
  constructor(code: CodeOf<'sink'>, message: string, details: Cause & Pick<ErrorDetails, 'retriable'> = {}) {
    super(code, message, details);
  }
}

/** A caller passed something the callee does not accept (HTTP 400, or 413 for sizes). */
export class ValidationError extends categoryError<'validation'>() {}

/** The thing asked for does not exist (HTTP 404). */
export class NotFoundError extends categoryError<'not_found'>() {}

/** The thing to create or register exists already (HTTP 409). */
export class ConflictError extends categoryError<'conflict'>() {}

/** A process cannot start: a listener cannot bind, the data directory cannot be used. */
export class StartupError extends categoryError<'startup'>() {}

/** The backbone cannot serve a call; retriable where waiting may help (Kafka unavailable). */
export class BackboneError extends categoryError<'backbone'>() {}

/** A session cannot be opened or kept as asked; retriable when another connection raced this one. */
export class SessionError extends categoryError<'session'>() {}

const MALFORMED_PACKET_RC = 0x81;

/**
 * An MQTT client broke the protocol: the connection closes with `reasonCode` (CONNACK or
 * DISCONNECT in 5.0). Reason code 0x81 is a Malformed Packet (§4.13), every other one a
 * Protocol Error or a limit, so the code follows from it.
 */
export class ProtocolError extends TributaryError {
  declare readonly reasonCode: number;

  constructor(reasonCode: number, message: string, details: Cause = {}) {
    super(reasonCode === MALFORMED_PACKET_RC ? 'MALFORMED_PACKET' : 'PROTOCOL_VIOLATION', message, { ...details, reasonCode });
  }
}

/** True when the same operation may succeed if tried again; kafkajs errors say so themselves. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof TributaryError) return err.retriable;
  const retriable = (err as { retriable?: unknown } | null)?.retriable;
  return typeof retriable === 'boolean' && retriable;
}

/** What the HTTP API answers for a failed request. */
export interface HttpError {
  status: number;
  body: { code: string; message: string };
}

/**
 * The HTTP answer for anything thrown. An error without a code answers 500 INTERNAL_ERROR with a
 * fixed message: its text may name files and hosts, so the API logs it instead of sending it.
 */
export function httpErrorOf(err: unknown): HttpError {
  if (err instanceof TributaryError) return { status: err.status ?? ERROR_CODES.INTERNAL_ERROR.status, body: err.toJSON() };
  return { status: ERROR_CODES.INTERNAL_ERROR.status, body: { code: 'INTERNAL_ERROR', message: 'internal error' } };
}
