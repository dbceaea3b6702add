// A private Prometheus for tests: Debian's `prometheus` on a free loopback port with a temporary config and storage, queried through its HTTP API.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait-for.ts';

function installed(binary: string): boolean {
  return spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Why the Prometheus tests cannot run here, or undefined when they can: the `skip` option of those tests.
 * `bash .ci/run` installs the binaries when they are missing; only a machine where it could not skips.
 */
export const prometheusMissing: string | undefined =
  installed('prometheus') && installed('promtool')
    ? undefined
    : 'prometheus and promtool are not installed (apt-get install prometheus; bash .ci/run does it)';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One series of an instant query: its labels and value (`NaN` stays NaN). */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export class PrometheusServer {
  readonly url: string;
  private readonly child: ChildProcess;
  private readonly dir: string;

  private constructor(url: string, child: ChildProcess, dir: string) {
    this.url = url;
    this.child = child;
    this.dir = dir;
  }

  /** Starts Prometheus scraping `targets` (`host:port`, path /metrics) every `scrapeIntervalS` seconds. */
  static async start(targets: readonly string[], scrapeIntervalS = 1): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-prometheus-'));
    const config = [
      'global:',
      `  scrape_interval: ${scrapeIntervalS}s`,
      `  evaluation_interval: ${scrapeIntervalS}s`,
      'scrape_configs:',
      '  - job_name: conveyor',
      '    static_configs:',
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), `${config}\n`);
    const port = await freePort();
    const child = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, child, dir);
    try {
      await waitFor(
        'prometheus ready',
        async () => {
          if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${stderr}`);
          return (await fetch(`${server.url}/-/ready`).catch(() => undefined))?.status === 200;
        },
        30_000,
        100,
      );
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** Evaluates `expr` now through `/api/v1/query`; rejects on a query Prometheus refuses. */
  async query(expr: string): Promise<Sample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${body.error}`);
    return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Scrape targets and whether their last scrape worked. */
  async targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]> {
    const body = (await (await fetch(`${this.url}/api/v1/targets`)).json()) as {
      data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] };
    };
    return body.data.activeTargets;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
