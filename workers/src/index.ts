// Public surface of @conveyor/workers: what controller authors import, and the runtimes that run their controllers.
/** The controller author's API (kube-conveyor's main entry point). @public */
export {
  BlockedError,
  type Controller,
  type ControllerDefinition,
  type ControllerHandlers,
  dataKeys,
  defineController,
  done,
  type ErrorPolicyContext,
  type EventOptions,
  type KubeObject,
  type ObjectEvents,
  type Outcome,
  REQUESTED_AT_ANNOTATIONS,
  type ReconcileContext,
  RetryableError,
  requeueAfter,
  type SetupEnvironment,
  type StatusPatch,
  type StoredObject,
  TerminalError,
} from '@conveyor/shared';
export * from './conditions.ts';
export * from './container-worker.ts';
export * from './load-controller.ts';
export * from './process-request.ts';
export * from './status-patch.ts';
