// Public surface of @conveyor/watcher: the programmatic watcher and the pieces it is built from.
export * from './enqueue-buffer.ts';
export * from './list-watch.ts';
export * from './predicates.ts';
export * from './sharding.ts';
export * from './watcher.ts';
export * from './watcher-metrics.ts';
