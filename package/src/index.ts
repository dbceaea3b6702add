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
// A controller's own Redis connection, made as Conveyor makes its own: logged outages, bounded close.
export { closeRedisConnection, createRedisConnection, type RedisConnection } from '@conveyor/shared';
export {
  BlockedError,
  type Condition,
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
  setCondition,
  TerminalError,
} from '@conveyor/workers';
