import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';

/** One span as OTLP/HTTP JSON carries it, with its resource's service.instance.id. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** The exporting node (resource attribute service.instance.id). */
  instance?: string;
  attributes?: { key: string; value: { stringValue?: string; arrayValue?: { values: { stringValue?: string }[] } } }[];
}

interface OtlpDocument {
  resourceSpans: { resource?: { attributes?: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** An OTLP/HTTP receiver for JSON traces (POST /v1/traces) on a random loopback port. */
export class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  /** Content types of the requests received. */
  readonly contentTypes: string[] = [];
  private readonly server: Server;
  private waiters: (() => void)[] = [];

  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        this.contentTypes.push(String(req.headers['content-type']));
        if (req.method === 'POST' && req.url === '/v1/traces') {
          for (const rs of (JSON.parse(body) as OtlpDocument).resourceSpans) {
            const instance = rs.resource?.attributes?.find((a) => a.key === 'service.instance.id')?.value.stringValue;
            for (const ss of rs.scopeSpans) for (const s of ss.spans) this.spans.push({ ...s, instance });
          }
          for (const w of [...this.waiters]) w();
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
  }

  /** Listens; resolves with the endpoint to configure (opentelemetry.exporter.endpoint). */
  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<unknown> {
    return new Promise((r) => this.server.close(r));
  }

  /** Resolves once a span satisfying `ok` arrived; rejects after `ms`. */
  span(ok: (s: OtlpSpan) => boolean, ms = 15_000): Promise<OtlpSpan> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const s = this.spans.find(ok);
        if (!s) return;
        clearTimeout(t);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve(s);
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`no such span within ${ms} ms; got ${JSON.stringify(this.spans.map((s) => s.name))}`));
      }, ms);
      this.waiters.push(check);
      check();
    });
  }
}
