// The private-Redis helper for this repository's tests; it ships in kube-conveyor/testing, so it lives in test/src.
export { freePort, RedisServer, type RedisServerOptions, redisServerBinary } from '../src/redis-server.ts';
