// Public surface of @conveyor/test: the Kubernetes API simulator, a private Redis, and a controller run against both (kube-conveyor/testing).

export { RedisServer, type RedisServerOptions } from './redis-server.ts';
export type { AuthorizationRule, TokenSpec } from './sim/auth.ts';
export type { FaultRule, FaultSettings, RequestCount, RequestCounters, ThrottleRule } from './sim/faults.ts';
export type { LoggedRequest, RequestLogSnapshot } from './sim/request-log.ts';
export { type KubeSimulator, type KubeSimulatorOptions, type SimulatorFaults, startKubeSimulator } from './sim/simulator.ts';
export { type CaSignedTlsMaterial, caSignedCertificate, type TlsMaterial } from './sim/tls.ts';
export type { UnresponsiveWatchRule } from './sim/watch.ts';
export { startTestEnv, type TestEnv, type TestEnvOptions } from './test-env.ts';
