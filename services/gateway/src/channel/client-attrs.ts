import { ConfigProblem, record, type Logger } from '@tributary/common';
import { isClientAttrName, MAX_CLIENT_ATTR_LENGTH, type ConnectInfo } from '@tributary/hooks';
import { parseExpression, type Expression, type Value, type ValueMap } from '@tributary/rulesql';
import type { PeerCertificate } from '../connection/tls';

/** One entry of `mqtt.client_attrs_init` (EMQX 5.7+): an expression of rule SQL and the attribute its value becomes. */
export interface ClientAttrInit {
  expression: string;
  set_as_attr: string;
}

/**
 * An entry of `mqtt.client_attrs_init` checked: both fields strings, the name an attribute name,
 * the expression one that parses (its functions known, their arities right).
 */
export function parseClientAttrInit(raw: unknown): ClientAttrInit | ConfigProblem {
  const r = record<ClientAttrInit>(raw, { expression: 'string', set_as_attr: 'string' });
  if (r instanceof ConfigProblem) return r;
  if (!isClientAttrName(r.set_as_attr)) return new ConfigProblem(`set_as_attr "${r.set_as_attr}": names are 1-64 letters, digits, _ or -`);
  try {
    parseExpression(r.expression);
  } catch (err) {
    return new ConfigProblem(`expression "${r.expression}": ${(err as Error).message}`);
  }
  return { expression: r.expression, set_as_attr: r.set_as_attr };
}

/** The attributes of a CONNECT, or undefined when no expression gave a value. */
export type ClientAttrsInit = (client: ConnectInfo, cert: PeerCertificate | undefined) => Record<string, string> | undefined;

/** An expression's value as an attribute: text (numbers and booleans as theirs); anything else, empty or too long, unset. */
function attrValue(v: Value): string | undefined {
  const text = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
  return text === undefined || text.length === 0 || text.length > MAX_CLIENT_ATTR_LENGTH ? undefined : text;
}

/** A CONNECT's User-Property pairs as one map (a repeated key keeps its last value), EMQX's `user_property`. */
function userProperty(c: ConnectInfo): ValueMap {
  const out: ValueMap = {};
  for (const [k, v] of Object.entries(c.properties?.userProperties ?? {})) out[k] = Array.isArray(v) ? v[v.length - 1] : v;
  return out;
}

/**
 * `mqtt.client_attrs_init` compiled once: at each CONNECT, before authentication, every
 * expression is evaluated in order over the client's columns (EMQX's names: clientid, username,
 * cn, dn, peerhost, peername, sockname, proto_name, proto_ver, protocol, listener, zone,
 * user_property, and client_attrs so far), and a value sets the attribute `set_as_attr`. An
 * expression that fails (a function's error, a payload that is not JSON ...) or whose value is
 * undefined, empty, not text or longer than 1024 characters leaves the attribute unset; the first
 * failure of each expression is logged as a warning, later ones at debug. Undefined for no entries.
 */
export function compileClientAttrsInit(entries: readonly ClientAttrInit[] | undefined, log: Logger): ClientAttrsInit | undefined {
  if (!entries || entries.length === 0) return undefined;
  const compiled = entries.map((e) => ({ name: e.set_as_attr, expr: parseExpression(e.expression) as Expression, warned: false }));
  return (c, cert) => {
    let attrs: Record<string, string> | undefined;
    const columns: ValueMap = {
      clientid: c.clientId,
      username: c.username,
      cn: cert?.cn,
      dn: cert?.dn,
      peerhost: c.peerhost,
      peername: c.peername,
      sockname: c.sockname,
      proto_name: c.protoName ?? 'MQTT',
      proto_ver: c.protocolVersion,
      protocol: 'mqtt',
      listener: c.listener,
      zone: 'default',
      user_property: userProperty(c),
      client_attrs: {},
    };
    for (const e of compiled) {
      let v: Value;
      try {
        v = e.expr.run(columns);
      } catch (err) {
        const fields = { clientId: c.clientId, attr: e.name, expression: e.expr.text, err: (err as Error).message };
        if (e.warned) log.debug(fields, 'client attribute not set: its expression failed');
        else {
          e.warned = true;
          log.warn(fields, 'client attribute not set: its expression failed (logged once per expression; later failures at debug)');
        }
        continue;
      }
      const text = attrValue(v);
      if (text === undefined) continue;
      // Later expressions see the attributes set so far (client_attrs.<name>).
      if (attrs === undefined) columns.client_attrs = attrs = {};
      attrs[e.name] = text;
    }
    return attrs;
  };
}
