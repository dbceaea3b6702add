// Public surface of @conveyor/test: the Kubernetes API simulator and its types.
export type { AuthorizationRule, TokenSpec } from './sim/auth.ts';
export type { FaultRule, FaultSettings, RequestCount, RequestCounters, ThrottleRule } from './sim/faults.ts';
export type { LoggedRequest, RequestLogSnapshot } from './sim/request-log.ts';
export { type KubeSimulator, type KubeSimulatorOptions, type SimulatorFaults, startKubeSimulator } from './sim/simulator.ts';
