import { bool, configFragment, ConfigProblem, duration, Infer, int, list, oneOf } from '@tributary/common';
import { AUTHENTICATORS, AUTHZ_SOURCES } from './providers';

/** One item of `authentication`, validated by its kind's spec. */
export interface AuthenticatorItem {
  /** `<mechanism>:<backend>` or the mechanism: the key of AUTHENTICATORS. */
  id: string;
  enable: boolean;
  config: unknown;
}

/** One item of `authorization.sources`. */
export interface SourceItem {
  type: string;
  enable: boolean;
  config: unknown;
}

function asObject(raw: unknown): Record<string, unknown> | ConfigProblem {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return new ConfigProblem('expected an object');
  return { ...(raw as Record<string, unknown>) };
}

function takeEnable(obj: Record<string, unknown>): boolean | ConfigProblem {
  const enable = obj.enable ?? true;
  delete obj.enable;
  return typeof enable === 'boolean' ? enable : new ConfigProblem('field "enable" must be a boolean');
}

export function parseAuthenticator(raw: unknown): AuthenticatorItem | ConfigProblem {
  const obj = asObject(raw);
  if (obj instanceof ConfigProblem) return obj;
  const { mechanism, backend } = obj;
  if (typeof mechanism !== 'string') return new ConfigProblem(`field "mechanism" is required (one of: ${[...new Set(Object.keys(AUTHENTICATORS).map((k) => k.split(':')[0]))].join(', ')})`);
  if (backend !== undefined && typeof backend !== 'string') return new ConfigProblem('field "backend" must be a string');
  const id = backend === undefined ? mechanism : `${mechanism}:${backend}`;
  const spec = AUTHENTICATORS[id];
  if (!spec) return new ConfigProblem(`unknown authenticator "${id}" (known: ${Object.keys(AUTHENTICATORS).join(', ') || 'none'})`);
  delete obj.mechanism;
  delete obj.backend;
  const enable = takeEnable(obj);
  if (enable instanceof ConfigProblem) return enable;
  const config = spec.parse(obj);
  if (config instanceof ConfigProblem) return new ConfigProblem(`${id}: ${config.message}`);
  return { id, enable, config };
}

export function parseSource(raw: unknown): SourceItem | ConfigProblem {
  const obj = asObject(raw);
  if (obj instanceof ConfigProblem) return obj;
  const { type } = obj;
  const spec = typeof type === 'string' ? AUTHZ_SOURCES[type] : undefined;
  if (!spec || typeof type !== 'string') return new ConfigProblem(`field "type" must be one of: ${Object.keys(AUTHZ_SOURCES).join(', ') || 'none'}`);
  delete obj.type;
  const enable = takeEnable(obj);
  if (enable instanceof ConfigProblem) return enable;
  const config = spec.parse(obj);
  if (config instanceof ConfigProblem) return new ConfigProblem(`${type}: ${config.message}`);
  return { type, enable, config };
}

/** Authentication and authorization keys (docs/security.md), EMQX's names and layout. */
export const authConfigFragment = configFragment('@tributary/auth', {
  authentication: list<AuthenticatorItem>(
    [],
    'The authentication chain, in order: each item {"mechanism", "backend", ...} (docs/security.md). A client the first authenticator ignores goes to the next; empty = every client is allowed.',
    parseAuthenticator,
  ),
  authorization: {
    sources: list<SourceItem>([], 'Authorization sources, in order: each item {"type": "file"|"built_in_database"|"postgresql"|"http", ...} (docs/security.md). The first that matches decides.', parseSource),
    no_match: oneOf(['allow', 'deny'] as const, 'allow', 'What a publish or subscribe no source matched gets.'),
    deny_action: oneOf(['ignore', 'disconnect'] as const, 'ignore', 'On a denied publish or subscribe: ignore (reason code 0x87 or a silent drop) or disconnect the client.'),
    cache: {
      enable: bool(true, "Cache each client's authorization decisions (cleared when rules change)."),
      max_size: int(32, 'Decisions cached per client; the oldest goes first.', 1, 1_000_000),
      ttl: duration(60_000, 'How long a cached decision is used.', 1),
    },
  },
});

export type AuthConfig = Infer<typeof authConfigFragment.schema>;
