export * from './topic';
export * from './trie';
export * from './topic-set';
export * from './reason-codes';
export * from './message';
export * from './parser';
export * from './encode';
export * from './subscription';
