export * from './points';
export * from './priorities';
export * from './registry';
export * from './topic-filters';
export * from './plugins';
export * from './config';
export * from './message';
export * from './client-attrs';
