export * from './router';
export * from './shared';
