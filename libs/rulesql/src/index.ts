/**
 * EMQX's rule SQL as a language of its own: values, the parser and evaluator, and the built-in
 * functions. The rule engine (services/rules) runs statements of it; the gateway evaluates
 * single expressions of it (mqtt.client_attrs_init, see expression.ts).
 */
export * from './value';
export * from './sql';
export * from './functions';
export * from './expression';
