import { bind, bool, configFragment, Infer } from '@tributary/common';

/** The HTTP API's keys (`dashboard.*`, EMQX's name for them). */
export const apiConfigFragment = configFragment('@tributary/api', {
  dashboard: {
    listeners: {
      http: {
        enable: bool(true, 'Serve the HTTP API (/status for now).'),
        bind: bind('0.0.0.0:18083', 'HTTP API listen address.'),
      },
    },
  },
});

export type ApiConfig = Infer<typeof apiConfigFragment.schema>;
