import { bool, configFragment, duration, Infer, int, sizeOrFraction } from '@tributary/common';

/** Flapping detection and overload protection (docs/security.md), EMQX's names. */
export const limitsConfigFragment = configFragment('@tributary/auth', {
  flapping_detect: {
    enable: bool(false, 'Ban a client id that sends CONNECT more than max_count times within window_time.'),
    window_time: duration(60_000, 'The window CONNECTs of one client id are counted in.', 1),
    max_count: int(15, 'CONNECTs allowed per client id within window_time; the next one is refused (0x8A) and the client id banned.', 1),
    ban_time: duration(300_000, 'How long a flapping client id stays banned (a ban in the banned table, by "flapping_detect").', 1000),
  },
  overload_protection: {
    enable: bool(false, 'Refuse new CONNECTs while the process is overloaded: CONNACK 0x89 Server busy (event-loop lag) or 0x97 Quota exceeded (heap); 3.x: 3.'),
    max_event_loop_lag: duration(500, 'Overloaded while the event-loop delay (90th percentile over the last second) is above this.', 1),
    max_heap: sizeOrFraction('0.9', 'Overloaded while the V8 heap in use is above this: a fraction of the heap limit ("0.9") or a size ("1GB").'),
  },
});

export type LimitsConfig = Infer<typeof limitsConfigFragment.schema>;
