export * from './backbone';
export * from './embedded';
