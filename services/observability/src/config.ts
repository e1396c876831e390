import { bool, configFragment, duration, Infer, str } from '@tributary/common';

/** Prometheus scraping, the monitor's sampling and OpenTelemetry tracing (docs/observability.md). */
export const observabilityConfigFragment = configFragment('@tributary/observability', {
  prometheus: {
    enable_basic_auth: bool(false, 'GET /api/v5/prometheus/stats, /prometheus/auth and /prometheus/data_integration need an API key (HTTP Basic) like other routes; false: anyone who reaches the HTTP API may scrape.'),
    prefix: str('tributary_', 'Prefix of every metric name. "emqx_" gives EMQX\'s names (emqx_connections_count ...) so its Grafana dashboards work unchanged.'),
  },
  monitor: {
    sample_interval: duration(10_000, 'How often /api/v5/monitor samples counts and counters (EMQX: 10 s); one hour of samples is kept.', 100, 3_600_000),
  },
  opentelemetry: {
    traces: {
      enable: bool(false, 'Trace CONNECT and PUBLISH → durable append → delivery, and continue a `traceparent` user property; off: no span is made.'),
    },
    exporter: {
      endpoint: str('http://localhost:4318', 'OTLP/HTTP collector base URL; spans go to <endpoint>/v1/traces (JSON).'),
    },
    service_name: str('tributary', 'The service.name resource attribute of exported spans.'),
  },
});

export type ObservabilityConfig = Infer<typeof observabilityConfigFragment.schema>;

