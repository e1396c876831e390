export * from './config';
export * from './exposition';
export * from './monitor';
export * from './observability';
export * from './prometheus';
export * from './source';
export * from './tracing';
