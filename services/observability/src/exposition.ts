/** One sample of a family: label values and the number. */
export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

/** A metric family of the Prometheus text exposition format 0.0.4. */
export interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: Sample[];
}

/** The content type Prometheus expects for format 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function number(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

/** A metric name from a Tributary key: "messages.qos1.received" → "messages_qos1_received". */
export function metricName(prefix: string, key: string): string {
  return (prefix + key).replace(/[^a-zA-Z0-9_:]/g, '_');
}

/** Renders families as text exposition format 0.0.4 (# HELP, # TYPE, one line a sample). */
export function renderExposition(families: readonly Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = s.labels && Object.keys(s.labels).length ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
      out.push(`${f.name}${labels} ${number(s.value)}`);
    }
  }
  return out.join('\n') + '\n';
}
