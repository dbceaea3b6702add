// Public surface of @conveyor/shared.

export * from './api-budget.ts';
export * from './backoff.ts';
export * from './clock.ts';
export * from './config.ts';
export * from './controller.ts';
export * from './did-you-mean.ts';
export * from './duration.ts';
export * from './errors.ts';
export * from './event-series.ts';
export * from './kube/client.ts';
export * from './kube/config.ts';
export * from './kube/errors.ts';
export * from './kube/merge-patch.ts';
export * from './kube/paths.ts';
export * from './kube/types.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './object-key.ts';
export * from './ops-server.ts';
export * from './outcome.ts';
export * from './own-writes.ts';
export * from './queue/index.ts';
export * from './reconcile-stats.ts';
export * from './scale-signal.ts';
export * from './tracing.ts';
export * from './watch-cursor.ts';
