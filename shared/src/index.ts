// Public surface of @conveyor/shared.
export * from './config.ts';
export * from './controller.ts';
export * from './duration.ts';
export * from './errors.ts';
export * from './kube-client.ts';
export * from './logger.ts';
export * from './object-key.ts';
export * from './outcome.ts';
export * from './watch-cursor.ts';
