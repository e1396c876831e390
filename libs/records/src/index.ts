export * from './codec';
export * from './reader';
export * from './message';
export * from './session';
export * from './gateway-lease';
export * from './banned';
export * from './event';
export * from './rule';
