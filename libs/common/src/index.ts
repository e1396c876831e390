export * from './logger';
export * from './config-schema';
export * from './config-fragment';
export * from './config';
export * from './errors';
export * from './service';
export * from './progress';
export * from './timing';
