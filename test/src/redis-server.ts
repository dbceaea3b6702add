// Starts a private redis-server on a free loopback port (never the machine's shared 6379): for tests here and, through kube-conveyor/testing, in users' projects.
//
// We spawn the redis-server binary ourselves instead of using redis-memory-server because tests also
// need to stop and restart a server on the same port (epoch loss) and to start cluster-mode nodes,
// which redis-memory-server does not offer.
//
// The server runs in a process group of its own: a terminal's Ctrl-C goes to the foreground process
// group, and a Redis in ours would die before the process that owns it (the demo) could stop what
// uses it in order. Whoever starts one stops it; a process that exits without doing so (an error, a
// second Ctrl-C) still takes its servers down with it.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServerOptions {
  /** Extra redis-server arguments, such as ['--cluster-enabled', 'yes']. */
  args?: string[];
  port?: number;
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  private readonly args: string[];
  private child: ChildProcess | undefined;

  private constructor(port: number, dir: string, args: string[]) {
    this.port = port;
    this.dir = dir;
    this.args = args;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const port = options.port ?? (await freePort());
    const server = new RedisServer(port, mkdtempSync(join(tmpdir(), 'conveyor-redis-')), options.args ?? []);
    await server.spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null;
  }

  /** Stops the server without saving (a restart loses every key, like a restart without persistence). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async spawn(): Promise<void> {
    const binary = redisServerBinary();
    const child = spawn(
      binary,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    this.child = child;
    ownServers(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${output}`);
      const probe = new Redis({
        port: this.port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => {});
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${this.port} within 10s: ${output}`);
  }
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills the servers still running when this process exits, whatever the reason (`exit` handlers run synchronously, so SIGKILL). */
function ownServers(child: ChildProcess): void {
  if (!exitHookInstalled) process.once('exit', killOwnServers);
  exitHookInstalled = true;
  running.add(child);
  child.once('exit', () => running.delete(child));
}

function killOwnServers(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** redis-server from REDIS_SERVER_BINARY or PATH, or a one-line instruction to install it. */
export function redisServerBinary(): string {
  const fromEnv = process.env.REDIS_SERVER_BINARY;
  if (fromEnv) return fromEnv;
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || path === '') {
    throw new Error(
      'redis-server is not installed: install it with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`',
    );
  }
  return path;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}
