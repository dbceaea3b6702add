// `conveyor demo` as a newcomer runs it: a short demo in a child process must churn, sum up, and pass its convergence check.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnConveyor } from '@conveyor/test/support/conveyor-process';

const BIN = new URL('../../bin/conveyor.mjs', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `conveyor demo …` with stdout piped (not a terminal). A safety net, not a timing goal: SIGTERM after `timeoutMs` (generous, for a loaded machine) lets it clean up. */
function demo(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 240_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'demo', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const figure = (text: string, pattern: RegExp): number => {
  const match = pattern.exec(text);
  assert.ok(match?.[1] !== undefined, `no ${pattern} in:\n${text}`);
  return Number(match[1]);
};

describe('conveyor demo', () => {
  it('runs 200 Widgets through churn, prints plain progress lines and a summary, and passes the convergence check', async () => {
    const run = await demo(['--objects', '200', '--workers', '2']);
    const out = run.stdout;
    assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${out}\nstderr:\n${run.stderr}`);
    // Not a terminal: plain lines, no cursor movement.
    assert.ok(!out.includes('\x1b['), 'no terminal escape codes when stdout is a pipe');
    assert.match(out, /^\[\s*\d+\.\d+s\] .*backlog \d+ .*reconciles \d+ .*latency p50 .*dropped .*running \/ \d+ desired/m);
    for (const phase of [
      'spec edits',
      'status-only edits',
      'label edits',
      'deletes',
      'irrelevant palette edit',
      'relevant palette edit (50 dependents)',
      'manual enqueue',
      'burst of 100 new Widgets',
    ]) {
      assert.ok(out.includes(`churn: ${phase}`), `phase "${phase}" missing:\n${out}`);
    }

    const summary = out.slice(out.indexOf('summary after'));
    // 200 seeded − 20 deleted + 100 from the burst.
    assert.match(
      out,
      /convergence: PASSED — 280\/280 live Widgets at observedGeneration == generation with their child and external record; 20\/20 deleted Widgets gone/,
    );
    const reconciles = figure(summary, /reconciles (\d+), errors/);
    assert.ok(reconciles >= 280 + 50 + 20, `at least one reconcile per live Widget, spec edit and delete: ${reconciles}`);
    assert.ok(figure(summary, /merged (\d+)/) > 0, 'repeated events merged');
    assert.equal(figure(summary, /parked (\d+)/), 0);
    assert.ok(figure(summary, /events seen (\d+)/) > 0);
    // The status-only and label edits were dropped by the generation predicate; the palette edit that
    // touched only `notes` was dropped by its changed-keys predicate (the thundering herd that did not happen).
    assert.ok(figure(summary, /dropped by the watcher: .*?(\d+) widgets\.example\.com: filtered/) >= 40, summary);
    assert.equal(
      figure(summary, /dropped by the watcher: .*?(\d+) configmaps\+: filtered/),
      1,
      'exactly the irrelevant palette edit dropped',
    );
    assert.ok(figure(summary, /over (\d+) writes/) > 0, 'latency measured');
    assert.match(summary, /latency: p50 \d+ ms, p99 \d+ ms/);
  });

  it('stops within seconds with its summary when a terminal’s Ctrl-C reaches its whole process group', async () => {
    // A terminal sends SIGINT to every process of the foreground group: the demo and, unless it put
    // them elsewhere, the servers it started. Detached, the demo leads a group of its own, as a shell's job.
    const p = spawnConveyor(['demo', '--objects', '40', '--workers', '1'], { env: { ...process.env }, detached: true });
    try {
      const redisPort = (await p.waitForOutput(/Redis at redis:\/\/127\.0\.0\.1:(\d+)/, 120_000))[1];
      await p.waitForOutput(/churn: spec edits/, 120_000);
      const sent = Date.now();
      process.kill(-(p.child.pid as number), 'SIGINT');
      const exit = await p.exited;
      const out = p.stdout();
      // A bound, not a speed goal: a brief settle (10 s at most), one check and the cleanup, on a loaded machine.
      assert.ok(exit.at - sent < 60_000, `exited ${exit.at - sent} ms after Ctrl-C`);
      assert.equal(exit.code, 130, p.output());
      assert.match(out, /summary after \d+\.\d+s:/);
      assert.match(out, /convergence: (PASSED|FAILED) — \d+\/\d+ live Widgets/);
      assert.match(out, /interrupted before the churn script finished/);
      assert.doesNotMatch(p.output(), /\[ioredis\]|Unhandled error event/);
      // Its private Redis was stopped with it, not left behind or killed before the summary.
      const reachable = await new Promise<boolean>((resolve) => {
        const socket = connect(Number(redisPort), '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      assert.equal(reachable, false, `redis-server on ${redisPort} still runs after the demo exited`);
    } finally {
      if (p.child.pid !== undefined) {
        try {
          process.kill(-p.child.pid, 'SIGKILL');
        } catch {}
      }
    }
  });

  it('says in one line what to install when redis-server is missing, and exits 1', async () => {
    // A PATH with a shell and nothing else: a machine without redis-server.
    const bin = mkdtempSync(join(tmpdir(), 'conveyor-no-redis-'));
    symlinkSync('/bin/sh', join(bin, 'sh'));
    const run = await demo([], { ...process.env, PATH: bin, REDIS_SERVER_BINARY: '' }, 20_000);
    rmSync(bin, { recursive: true, force: true });
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0] ?? '', /^conveyor demo: redis-server is not installed: install it with `apt-get install redis-server`/);
  });

  it('rejects a bad option value with exit 2, naming it', async () => {
    const run = await demo(['--objects', 'many'], process.env, 20_000);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--objects must be a whole number from 8 to 100000, got "many"/);
  });
});
