// A private redis-server for one test file: started before its first test, stopped after its last, with a client connected to it.
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { RedisServer } from './redis-server.ts';

export interface PrivateRedis {
  /** The server; read it inside tests and hooks (it starts in a `before` hook). */
  readonly server: RedisServer;
  /** A client of the server, disconnected after the last test. */
  readonly redis: Redis;
}

/** Registers the `before`/`after` hooks of the calling file (or `describe` block) and returns their server and client. */
export function privateRedis(): PrivateRedis {
  let started: { server: RedisServer; redis: Redis } | undefined;
  before(async () => {
    const server = await RedisServer.start();
    started = { server, redis: new Redis(server.url) };
  });
  after(async () => {
    started?.redis.disconnect();
    await started?.server.close();
  });
  const get = () => {
    if (started === undefined) throw new Error('the private Redis is read before its before() hook ran');
    return started;
  };
  return {
    get server() {
      return get().server;
    },
    get redis() {
      return get().redis;
    },
  };
}
