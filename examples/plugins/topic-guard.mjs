// An example Tributary plugin (docs/plugins.md): an ES module whose default export is the plugin.
//
// - message.publish: messages on `upper_topic` are published with their payload in upper case;
// - client.authenticate: client ids starting with `refuse_prefix` are refused (CONNACK 0x87 / 5);
// - message.delivered: deliveries are counted; the count is published, retained, on
//   `stats_topic` at most every `stats_interval_ms` (its own stats messages are not counted).
//
// Load it with TRIBUTARY_PLUGINS='["./examples/plugins/topic-guard.mjs"]'; configure it with
// TRIBUTARY_PLUGIN_CONFIG='{"topic-guard": {"upper_topic": "shout", "refuse_prefix": "intruder-"}}'.

const defaults = {
  upper_topic: 'examples/upper',
  refuse_prefix: 'blocked-',
  stats_topic: 'examples/topic-guard/deliveries',
  stats_interval_ms: 200,
};

let settings = { ...defaults };
let deliveries = 0;
let reported = -1;
let timer;

export default {
  name: 'topic-guard',
  version: '1.0.0',

  start(ctx) {
    settings = { ...defaults, ...ctx.config };
    deliveries = 0;
    reported = -1;
    timer = setInterval(() => {
      if (deliveries === reported) return;
      reported = deliveries;
      ctx.publish({ topic: settings.stats_topic, payload: String(deliveries), qos: 1, retain: true }).catch((err) => ctx.logger.warn({ err }, 'could not publish the delivery count'));
    }, settings.stats_interval_ms);
    timer.unref();
    ctx.logger.info({ settings }, 'topic-guard started');
  },

  stop() {
    clearInterval(timer);
  },

  hooks: {
    'client.authenticate'(credentials) {
      if (credentials.clientId.startsWith(settings.refuse_prefix)) return { stop: true, result: 'deny' };
      return undefined; // next in the chain decides
    },

    'message.publish'(message) {
      if (message.topic !== settings.upper_topic) return undefined; // unchanged
      return { ...message, payload: Buffer.from(message.payload.toString('utf8').toUpperCase()) };
    },

    'message.delivered'(_client, message) {
      if (message.topic !== settings.stats_topic) deliveries++;
    },
  },
};
