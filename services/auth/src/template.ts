import { ConfigProblem } from '@tributary/common';

/** `${name}` in a template: names are lower-case words (EMQX's placeholders), or `client_attrs.NAME`. */
const PLACEHOLDER = /\$\{([a-z_]+(?:\.[A-Za-z0-9_-]{1,64})?)\}/g;

/** In a list of allowed placeholders: every `${client_attrs.NAME}` (the client's attribute NAME). */
export const CLIENT_ATTRS_PLACEHOLDER = 'client_attrs.*';
const ATTRS = 'client_attrs.';

/** Whether the placeholder `name` is one of `allowed` (`client_attrs.NAME` through CLIENT_ATTRS_PLACEHOLDER). */
export function placeholderAllowed(name: string, allowed: readonly string[]): boolean {
  return allowed.includes(name) || (name.startsWith(ATTRS) && allowed.includes(CLIENT_ATTRS_PLACEHOLDER));
}

/** A client's attributes as template values (`client_attrs.NAME`), to spread into the others. */
export function attrValues(attrs: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (attrs !== undefined) for (const [k, v] of Object.entries(attrs)) out[ATTRS + k] = v;
  return out;
}

/** The placeholder names a template uses, in order of appearance. */
export function placeholdersOf(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * A problem naming `field` when `template` uses a placeholder not in `allowed`: a typo such as
 * `${user}` must fail at start-up, not send a literal "${user}" to a server for every client.
 */
export function checkPlaceholders(template: string, allowed: readonly string[], field: string): ConfigProblem | undefined {
  const bad = placeholdersOf(template).find((p) => !placeholderAllowed(p, allowed));
  return bad === undefined ? undefined : new ConfigProblem(`field "${field}": unknown placeholder \${${bad}} (allowed: ${allowed.map((a) => `\${${a}}`).join(', ')})`);
}

/**
 * `template` with each placeholder replaced by `encode(values[name])` in a single pass: a value
 * that itself contains `${...}` is never expanded again. A missing value is the empty string
 * (also a client attribute the client does not have).
 */
export function render(template: string, values: Readonly<Record<string, string | undefined>>, encode: (v: string) => string = (v) => v): string {
  if (!template.includes('${')) return template;
  return template.replace(PLACEHOLDER, (whole, name: string) => (name in values || name.startsWith(ATTRS) ? encode(values[name] ?? '') : whole));
}
