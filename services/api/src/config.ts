import { bind, bool, configFragment, Infer, str } from '@tributary/common';

/** The HTTP API's keys (`dashboard.*` and `api_key.*`, EMQX's names for them). */
export const apiConfigFragment = configFragment('@tributary/api', {
  dashboard: {
    listeners: {
      http: {
        enable: bool(true, 'Serve the HTTP API (/api/v5; /status needs no key).'),
        bind: bind('0.0.0.0:18083', 'HTTP API listen address.'),
      },
    },
  },
  api_key: {
    bootstrap_file: str('', 'API keys for the HTTP API and tributary ctl: a file of key:secret[:role] lines, loaded at start. Empty: only /status answers.'),
  },
});

export type ApiConfig = Infer<typeof apiConfigFragment.schema>;
