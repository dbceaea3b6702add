// Public surface of @conveyor/workers: what controller authors import, and the runtimes that run their controllers.
export { done, type KubeObject, type Outcome, RetryableError, requeueAfter, type StoredObject, TerminalError } from '@conveyor/shared';
export * from './conditions.ts';
export * from './container-worker.ts';
export * from './kube-client.ts';
export * from './kube-errors.ts';
export * from './load-controller.ts';
export * from './process-request.ts';
export * from './reconciler.ts';
export * from './status-patch.ts';
