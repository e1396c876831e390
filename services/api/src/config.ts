import { bind, bool, configFragment, duration, Infer, str } from '@tributary/common';

/** The HTTP API's keys (`dashboard.*` and `api_key.*`, EMQX's names for them). */
export const apiConfigFragment = configFragment('@tributary/api', {
  dashboard: {
    listeners: {
      http: {
        enable: bool(true, 'Serve the HTTP API (/api/v5; /status needs no key).'),
        bind: bind('0.0.0.0:18083', 'HTTP API listen address.'),
        advertise: str('', 'Scaled out: host:port the other processes of the installation call this API at (cluster-wide /clients, kick ...). Empty: the bound address, or with a wildcard bind this host\'s first non-loopback IPv4 address.'),
      },
    },
    default_username: str('admin', 'The dashboard user for POST /login (bearer tokens).', { nonEmpty: true }),
    default_password: str('public', 'Its password; a warning is logged at start while it is the default "public".', { nonEmpty: true }),
    token_expired_time: duration(3_600_000, 'How long a token from POST /login is valid.', 1000),
  },
  api_key: {
    bootstrap_file: str('', 'API keys for the HTTP API and tributary ctl: a file of key:secret[:role] lines, loaded at start. Empty: only /status answers.'),
  },
});

export type ApiConfig = Infer<typeof apiConfigFragment.schema>;
