export * from './router';
export * from './shared';
export * from './cluster';
export * from './service';
