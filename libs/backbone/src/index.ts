export * from './backbone';
export * from './embedded';
export * from './kafka';
