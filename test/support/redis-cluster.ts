// Starts a private Redis Cluster (3 masters, no replicas) from the redis-server binary on free loopback ports.
import { spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort, RedisServer } from './redis-server.ts';

export class RedisCluster {
  readonly nodes: RedisServer[];

  private constructor(nodes: RedisServer[]) {
    this.nodes = nodes;
  }

  /** `host:port` of every node, for `config.redis.clusterNodes`. */
  get clusterNodes(): string[] {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`);
  }

  static async start(size = 3): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < size; i++) {
        // Each node keeps its nodes.conf in its own private temp dir (RedisServer's --dir).
        const port = await freePort();
        nodes.push(
          await RedisServer.start({
            port,
            args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
          }),
        );
      }
      const cluster = new RedisCluster(nodes);
      await runRedisCli(['--cluster', 'create', ...cluster.clusterNodes, '--cluster-replicas', '0', '--cluster-yes']);
      await cluster.waitUntilReady();
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.close()));
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
  }

  /** Every node reports `cluster_state:ok` and knows all slots. */
  private async waitUntilReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        this.nodes.map(async (node) => {
          const client = new Redis(node.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
          client.on('error', () => {});
          try {
            await client.connect();
            return String(await client.cluster('INFO'));
          } catch {
            return '';
          } finally {
            client.disconnect();
          }
        }),
      );
      if (states.every((info) => info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384'))) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not ready after ${timeoutMs}ms: ${states.join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** redis-cli from REDIS_CLI_BINARY or PATH. */
function redisCliBinary(): string {
  const fromEnv = process.env.REDIS_CLI_BINARY;
  if (fromEnv) return fromEnv;
  const found = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '') throw new Error('redis-cli is not installed: install it with `apt-get install redis-tools`');
  return path;
}

async function runRedisCli(args: string[]): Promise<void> {
  const child = spawn(redisCliBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`redis-cli ${args.join(' ')} exited with ${code}: ${output.slice(-2000)}`);
}
