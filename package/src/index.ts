// kube-conveyor: what a controller author imports — defineController, the outcomes, the errors, conditions and the types.

export type {
  KubeClient,
  ObjectKey,
  ObjectMeta,
  OwnerReference,
  PredicateSpec,
  ResourceSpec,
  TargetRef,
  WatchSpec,
} from '@conveyor/shared';
export {
  BlockedError,
  type Condition,
  type Controller,
  type ControllerDefinition,
  type ControllerHandlers,
  dataKeys,
  defineController,
  done,
  type KubeObject,
  type Outcome,
  type ReconcileContext,
  RetryableError,
  requeueAfter,
  type SetupEnvironment,
  type StatusPatch,
  type StoredObject,
  setCondition,
  TerminalError,
} from '@conveyor/workers';
