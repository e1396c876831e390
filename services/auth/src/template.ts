import { ConfigProblem } from '@tributary/common';

/** `${name}` in a template: names are lower-case words (EMQX's placeholders). */
const PLACEHOLDER = /\$\{([a-z_]+)\}/g;

/** The placeholder names a template uses, in order of appearance. */
export function placeholdersOf(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * A problem naming `field` when `template` uses a placeholder not in `allowed`: a typo such as
 * `${user}` must fail at start-up, not send a literal "${user}" to a server for every client.
 */
export function checkPlaceholders(template: string, allowed: readonly string[], field: string): ConfigProblem | undefined {
  const bad = placeholdersOf(template).find((p) => !allowed.includes(p));
  return bad === undefined ? undefined : new ConfigProblem(`field "${field}": unknown placeholder \${${bad}} (allowed: ${allowed.map((a) => `\${${a}}`).join(', ')})`);
}

/**
 * `template` with each placeholder replaced by `encode(values[name])` in a single pass: a value
 * that itself contains `${...}` is never expanded again. A missing value is the empty string.
 */
export function render(template: string, values: Readonly<Record<string, string | undefined>>, encode: (v: string) => string = (v) => v): string {
  if (!template.includes('${')) return template;
  return template.replace(PLACEHOLDER, (whole, name: string) => (name in values ? encode(values[name] ?? '') : whole));
}
