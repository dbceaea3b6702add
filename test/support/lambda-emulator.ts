// Starts serverless-offline (through scripts/serverless.mjs) on free loopback ports for end-to-end tests, and stops it.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis-server.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

export class LambdaEmulator {
  readonly endpoint: string;
  private readonly child: ChildProcess;

  private constructor(endpoint: string, child: ChildProcess) {
    this.endpoint = endpoint;
    this.child = child;
  }

  /** `config` is a serverless file at the project root; `env` reaches the functions through `${env:…}`. */
  static async start(config: string, env: Record<string, string>): Promise<LambdaEmulator> {
    const lambdaPort = await freePort();
    const httpPort = await freePort();
    const child = spawn(process.execPath, ['scripts/serverless.mjs', 'offline', 'start', '--config', config], {
      cwd: root,
      env: { ...process.env, ...env, LAMBDA_PORT: String(lambdaPort), LAMBDA_HTTP_PORT: String(httpPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-8_000);
        if (output.includes(`listening on http://127.0.0.1:${lambdaPort}`)) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => reject(new Error(`serverless-offline exited with ${code}:\n${output}`)));
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`serverless-offline did not start in 60 s:\n${output}`)), 60_000).unref(),
    );
    try {
      await Promise.race([ready, timeout]);
    } catch (error) {
      LambdaEmulator.kill(child);
      throw error;
    }
    return new LambdaEmulator(`http://127.0.0.1:${lambdaPort}`, child);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    LambdaEmulator.kill(this.child);
    await exited;
  }

  private static kill(child: ChildProcess): void {
    // The emulator runs osls in a child of its own: end the whole process group.
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }
  }
}
