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

/**
 * The base of every error Tributary throws: a stable `code` to match on (never the message),
 * whether a retry may succeed, the cause, and where it applies an MQTT reason code or HTTP status.
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
    this.retriable = details.retriable ?? false;
    this.reasonCode = details.reasonCode;
    this.status = details.status;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}
