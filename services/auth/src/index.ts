export * from './acl';
export * from './config';
export * from './providers';
export * from './service';
export * from './types';
export * from './authz/acl-conf';
export * from './authz/file';
