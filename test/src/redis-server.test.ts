import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisServer } from './redis-server.ts';

describe('Harness: private redis-server', () => {
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    await server.close();
  });

  it('runs on a free port, not the shared 6379', async () => {
    assert.notEqual(server.port, 6379);
    const client = new Redis(server.url);
    try {
      assert.equal(await client.ping(), 'PONG');
    } finally {
      client.disconnect();
    }
  });

  it('loses every key on restart, as a server without persistence does', async () => {
    const client = new Redis(server.url, { lazyConnect: true });
    await client.connect();
    await client.set('k', 'v');
    client.disconnect();
    await server.restart();
    const again = new Redis(server.url);
    try {
      assert.equal(await again.get('k'), null);
    } finally {
      again.disconnect();
    }
  });
});
