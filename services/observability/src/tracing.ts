import { ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace, TraceFlags, type Context, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '@tributary/common';
import type { HookMessage, HookRegistry } from '@tributary/hooks';
import type { ObservabilityConfig } from './config';

/** A W3C `traceparent` value: version 00, trace id, parent span id, flags. */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent a `traceparent` names, or the root context when it is absent or malformed. */
export function contextOf(traceparent: unknown): Context {
  const m = typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true });
}

/** The `traceparent` of a span. */
export function traceparentOf(span: Span): string {
  const c = span.spanContext();
  return `00-${c.traceId}-${c.spanId}-0${c.traceFlags & TraceFlags.SAMPLED}`;
}

function userTraceparent(msg: { properties?: { userProperties?: Record<string, string | string[]> } | undefined }): string | undefined {
  const v = msg.properties?.userProperties?.traceparent;
  return typeof v === 'string' ? v : undefined;
}

type Records = readonly { headers?: Readonly<Record<string, string>> }[];

/** A backbone's appends, as Tracing wraps them. */
interface Appender {
  append(topic: string, records: Records): Promise<unknown>;
  appendShared?(topic: string, records: Records): Promise<void>;
}

/**
 * OpenTelemetry traces, exported over OTLP/HTTP (JSON) to `opentelemetry.exporter.endpoint`:
 * a `CONNECT` span per client.connect → client.connack, a `PUBLISH <topic>` span per message
 * (a child of the publisher's `traceparent` user property when it sent one), a `durable append`
 * span per messages-topic write and a `deliver <topic>` span per delivery, both children of the
 * PUBLISH span. The PUBLISH span's context becomes the message's `traceparent` user property, so
 * it travels in the Kafka record (header and value) to the router (its `route <topic>` span), to
 * other gateways and on to v5 subscribers.
 * Made only when `opentelemetry.traces.enable`: when off nothing is registered.
 */
export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly connects = new Map<string, Span>();
  private readonly removers: (() => void)[] = [];

  constructor(config: ObservabilityConfig, nodeName: string, private readonly log: Logger) {
    const url = `${config.opentelemetry.exporter.endpoint.replace(/\/+$/, '')}/v1/traces`;
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.opentelemetry.service_name, 'service.instance.id': nodeName }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 500 })],
    });
    this.tracer = this.provider.getTracer('tributary');
    log.info({ url }, 'OpenTelemetry traces on');
  }

  /** Registers the hooks on a broker's registry. */
  attach(hooks: HookRegistry): void {
    const opts = { name: 'opentelemetry', priority: 'tracing' as const };
    this.removers.push(
      hooks.add('client.connect', opts, (c) => {
        this.connects.get(c.clientId)?.end();
        const span = this.tracer.startSpan('CONNECT', { kind: SpanKind.SERVER, attributes: { 'mqtt.client_id': c.clientId, 'mqtt.protocol_version': c.protocolVersion, 'net.peer.ip': c.peerhost, ...(c.listener ? { 'mqtt.listener': c.listener } : {}) } }, ROOT_CONTEXT);
        this.connects.set(c.clientId, span);
      }),
      hooks.add('client.connack', opts, (c, rc) => {
        const span = this.connects.get(c.clientId);
        if (!span) return;
        this.connects.delete(c.clientId);
        span.setAttribute('mqtt.connack.reason_code', rc);
        if (rc >= 0x80) span.setStatus({ code: SpanStatusCode.ERROR, message: `CONNACK 0x${rc.toString(16)}` });
        span.end();
      }),
      hooks.add('message.publish', opts, (msg) => this.published(msg)),
      hooks.add('message.delivered', opts, (client, msg) => {
        const span = this.tracer.startSpan(`deliver ${msg.topic}`, { kind: SpanKind.CONSUMER, attributes: { 'mqtt.topic': msg.topic, 'mqtt.client_id': client.clientId, 'mqtt.qos': msg.qos } }, contextOf(userTraceparent(msg)));
        span.end();
      }),
    );
  }

  /** Wraps `backbone.append` (and appendShared) so each call with a record carrying a `traceparent` header gets a `durable append` span. */
  wrapAppend(backbone: Appender): void {
    backbone.append = this.traced(backbone.append.bind(backbone));
    if (backbone.appendShared) backbone.appendShared = this.traced(backbone.appendShared.bind(backbone));
  }

  private traced<R>(append: (topic: string, records: Records) => Promise<R>): (topic: string, records: Records) => Promise<R> {
    return (topic, records) => {
      const parent = records.find((r) => r.headers?.traceparent)?.headers?.traceparent;
      if (!parent) return append(topic, records);
      const span = this.tracer.startSpan('durable append', { kind: SpanKind.PRODUCER, attributes: { 'messaging.destination.name': topic, 'messaging.batch.message_count': records.length } }, contextOf(parent));
      const done = append(topic, records);
      done.then(
        () => span.end(),
        (err: Error) => (span.setStatus({ code: SpanStatusCode.ERROR, message: err.message }), span.end()),
      );
      return done;
    };
  }

  /**
   * The router's span of one message (RouterServiceOptions.traceRoute): `route <topic>`, a child
   * of its PUBLISH span (the record's traceparent header), with the gateways it goes to; ended by
   * the returned function once the downlink appends are durable.
   */
  routeSpan(topic: string, traceparent: string, gateways: readonly string[]): (err?: Error) => void {
    const span = this.tracer.startSpan(`route ${topic}`, { kind: SpanKind.CONSUMER, attributes: { 'mqtt.topic': topic, 'messaging.system': 'kafka', 'tributary.gateways': [...gateways] } }, contextOf(traceparent));
    return (err) => {
      if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
    };
  }

  /** message.publish: a PUBLISH span, its context set as the message's traceparent user property. */
  private published(msg: HookMessage): HookMessage {
    const span = this.tracer.startSpan(`PUBLISH ${msg.topic}`, { kind: SpanKind.PRODUCER, attributes: { 'mqtt.topic': msg.topic, 'mqtt.client_id': msg.clientId, 'mqtt.qos': msg.qos, 'mqtt.retain': msg.retain, 'messaging.message.body.size': msg.payload.length } }, contextOf(userTraceparent(msg)));
    const userProperties = { ...msg.properties?.userProperties, traceparent: traceparentOf(span) };
    span.end();
    return { ...msg, properties: { ...msg.properties, userProperties } };
  }

  /** Ends open CONNECT spans and flushes what is buffered. */
  async stop(): Promise<void> {
    for (const r of this.removers.splice(0)) r();
    for (const s of this.connects.values()) s.end();
    this.connects.clear();
    await this.provider.shutdown().catch((err: unknown) => this.log.warn({ err }, 'OpenTelemetry export at shutdown failed'));
  }
}

