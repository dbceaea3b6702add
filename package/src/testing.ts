// kube-conveyor/testing: the Kubernetes API simulator, a private Redis, and a controller run against both for its own tests.
export {
  type KubeSimulator,
  type KubeSimulatorOptions,
  RedisServer,
  type RedisServerOptions,
  startKubeSimulator,
  startTestEnv,
  type TestEnv,
  type TestEnvOptions,
} from '@conveyor/test';
