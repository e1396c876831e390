export * from './api';
export * from './acl';
export * from './config';
export * from './providers';
export * from './service';
export * from './types';
