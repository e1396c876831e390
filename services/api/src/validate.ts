import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * Request validation against a route's JSON schema, compiled on the route's first request. Fastify
 * compiles every route's validators when it starts: with the API's sixty-odd routes that code
 * stayed in the heap of every process and cost the MQTT path measurably (fan-in QoS 1, A/B in one
 * run: 115.9k/115.8k msg/s with the compiled validators, 123.6k/127.4k without; docs/benchmarks.md).
 * Only routes that are called pay for theirs here.
 */
let ajv: Ajv | undefined;

export class LazyValidator {
  private fn: ValidateFunction | undefined;

  constructor(
    private readonly schema: object,
    /** "querystring" or "body": how problems name where the field is. */
    private readonly where: string,
  ) {}

  /** Undefined when `value` is valid (query values are coerced in place); otherwise a message naming the field. */
  problem(value: unknown): string | undefined {
    // Fastify's own settings, so routes validate as they did when fastify compiled them.
    ajv ??= addFormats(new Ajv({ coerceTypes: 'array', allErrors: false, useDefaults: true, removeAdditional: true, strict: false }));
    this.fn ??= ajv.compile(this.schema);
    if (this.fn(value)) return undefined;
    const e = this.fn.errors?.[0];
    if (!e) return `${this.where} is invalid`;
    const field = e.keyword === 'required' ? `${e.instancePath}/${String((e.params as { missingProperty?: string }).missingProperty)}` : e.instancePath;
    return `${this.where}${field} ${e.message ?? 'is invalid'}`;
  }
}
