export * from './node';
export * from './cli';
