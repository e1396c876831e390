/**
 * EMQX's client attributes (ClientInfo.clientAttrs): names and values as the broker keeps them.
 * Set at CONNECT by mqtt.client_attrs_init (services/gateway) and by authenticators' replies.
 */

/** A client attribute's name: 1-64 letters, digits, _ or - (so `${client_attrs.NAME}` reads unambiguously). */
export const CLIENT_ATTR_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `name` may name a client attribute (CLIENT_ATTR_NAME, and not `__proto__`). */
export function isClientAttrName(name: string): boolean {
  return CLIENT_ATTR_NAME.test(name) && name !== '__proto__';
}

/** Most attributes an authenticator's reply may set; later ones are skipped (a client's memory stays bounded). */
export const MAX_CLIENT_ATTRS = 64;

/** Longest attribute value kept, in characters; a longer value is skipped. */
export const MAX_CLIENT_ATTR_LENGTH = 1024;

/**
 * The attributes of an authenticator's `client_attrs` (an HTTP reply's field, a JWT claim): an
 * object of names to strings, numbers and booleans as their text. Entries with another name or
 * value, empty or too long, are skipped (EMQX leaves such an attribute unset). Undefined when
 * `raw` is not an object or nothing in it is usable.
 */
export function clientAttrsFrom(raw: unknown): Record<string, string> | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  let out: Record<string, string> | undefined;
  let n = 0;
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (n >= MAX_CLIENT_ATTRS) break;
    if (!isClientAttrName(name)) continue;
    const text = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
    if (text === undefined || text.length === 0 || text.length > MAX_CLIENT_ATTR_LENGTH) continue;
    (out ??= {})[name] = text;
    n++;
  }
  return out;
}

/** `base` with `extra` over it (an authenticator's attributes win over mqtt.client_attrs_init's); `base` itself when `extra` has none. */
export function mergeClientAttrs(base: Readonly<Record<string, string>> | undefined, extra: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined {
  if (extra === undefined) return base;
  return base === undefined ? extra : { ...base, ...extra };
}
