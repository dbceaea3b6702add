// Measures what a pod's watcher holds in memory: the bundle `conveyor build` writes, run as `watch` in a process of its own, its peak and steady RSS through a first sync and a relist.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeSimulator } from '@conveyor/test';
import { bundleRuntime } from '../../cli/build/bundle.ts';
import { CONTROLLER_MODULE } from '../../examples/widgets/widget-harness.ts';
import { waitFor } from './wait-for.ts';

export interface WatcherMemory {
  /** The process's peak RSS when its first list of Widgets was synced, and after a relist of them. */
  firstSyncPeakBytes: number;
  relistPeakBytes: number;
  /** Its RSS a while after the relist, with nothing to do. */
  steadyBytes: number;
  firstSyncMs: number;
}

/** Writes the Widget example's bundle (`node bundle.mjs watch|worker|dispatch`) to `dir`; returns its path. */
export async function buildWidgetBundle(dir: string): Promise<string> {
  const file = join(dir, 'bundle.mjs');
  await bundleRuntime([CONTROLLER_MODULE], file, 'measured');
  return file;
}

/** One field of /proc/<pid>/status in bytes (Linux): VmHWM is the peak resident set, VmRSS the current one. */
function procStatusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return Number.parseInt(line?.split(/\s+/)[1] ?? 'NaN', 10) * 1024;
}

/**
 * Runs `bundle watch --config <configFile>` (its log level must be info) with `nodeOptions` as NODE_OPTIONS until its
 * first list of Widgets is synced, then ends every watch and answers the resumptions 410 Gone so it lists again, and
 * reads its memory at each step. The process is killed at the end.
 */
export async function measureWatcherMemory(options: {
  bundle: string;
  configFile: string;
  nodeOptions: string;
  sim: KubeSimulator;
  /** How long to wait after the relist before reading the steady RSS. @defaultValue 3000 */
  settleMs?: number;
}): Promise<WatcherMemory> {
  const started = Date.now();
  const child: ChildProcess = spawn(process.execPath, [options.bundle, 'watch', '--config', options.configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: options.nodeOptions },
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let syncs = 0;
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.includes('"msg":"list synced"') && line.includes('widgets.example.com')) syncs++;
  });
  /** Whether the watcher has synced `n` lists of Widgets; throws once it has exited. */
  const synced = (n: number) => {
    if (child.exitCode !== null) throw new Error(`the watcher exited ${child.exitCode}: ${output.slice(-2_000)}`);
    return syncs >= n;
  };
  try {
    await waitFor('the first sync', () => synced(1), 300_000);
    const pid = child.pid as number;
    const firstSyncPeakBytes = procStatusBytes(pid, 'VmHWM');
    const firstSyncMs = Date.now() - started;
    // Every watch ends and its resumption is told 410 Gone (the history is too old): the watcher lists everything again.
    options.sim.faults.expireNextWatch(options.sim.faults.closeWatches());
    await waitFor('the relist', () => synced(2), 300_000);
    const relistPeakBytes = procStatusBytes(pid, 'VmHWM');
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 3_000));
    return { firstSyncPeakBytes, relistPeakBytes, steadyBytes: procStatusBytes(pid, 'VmRSS'), firstSyncMs };
  } finally {
    child.kill('SIGKILL');
  }
}
