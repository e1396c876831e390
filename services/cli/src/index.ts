export * from './config';
export * from './node';
export * from './cli';
