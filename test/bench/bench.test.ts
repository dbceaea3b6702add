// Smoke run of every benchmark scenario at tiny sizes: the harness cannot rot. No goal is checked here; goals belong to `npm run bench`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SCENARIO_IDS, type ScenarioResult } from './bench-support.ts';
import { SCENARIOS } from './run-bench.ts';

const bin = fileURLToPath(new URL('../../bin/conveyor.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-smoke-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    // SIGTERM is the harness's own cleanup path; the test's timeout must not leave servers behind.
    const timer = setTimeout(() => child.kill('SIGTERM'), 150_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function assertFinite(value: unknown, what: string): void {
  assert.equal(typeof value, 'number', `${what} is a number`);
  assert.ok(Number.isFinite(value as number), `${what} is finite, got ${String(value)}`);
}

describe('conveyor bench --size tiny', () => {
  it('runs every scenario, prints parseable JSON with finite figures, and writes the report with one chart per scenario', async () => {
    const out = join(dir, 'BENCHMARKS.md');
    const run = await runCli(['bench', '--size', 'tiny', '--json', '--out', out]);
    assert.equal(run.code, 0, run.stderr);
    const parsed = JSON.parse(run.stdout) as { results: ScenarioResult[]; missing: string[]; environment: { node: string } };
    assert.match(parsed.environment.node, /^v\d+/);
    const available = SCENARIO_IDS.filter((id) => SCENARIOS[id] !== undefined);
    assert.deepEqual(
      parsed.results.map((r) => r.id),
      available,
    );
    assert.deepEqual(
      parsed.missing,
      SCENARIO_IDS.filter((id) => SCENARIOS[id] === undefined),
    );
    for (const r of parsed.results) {
      assertFinite(r.figure.value, `${r.id} figure`);
      assertFinite(r.reference.value, `${r.id} reference`);
      assertFinite(r.ratio, `${r.id} ratio`);
      assert.ok(r.chart.bars.length > 0, `${r.id} has a chart`);
      for (const bar of r.chart.bars) assertFinite(bar.value, `${r.id} bar ${bar.label}`);
      if (r.converged !== undefined) assert.equal(r.converged, true, `${r.id}: every key converged`);
    }
    const report = readFileSync(out, 'utf8');
    for (const r of parsed.results) {
      assert.match(report, new RegExp(`\\| \\[${r.id} `), `${r.id} has a table row`);
      const svg = readFileSync(join(dir, 'bench', `${r.id.toLowerCase()}.svg`), 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(report, new RegExp(`\\(bench/${r.id.toLowerCase()}\\.svg\\)`));
    }
  });

  it('rejects an unknown scenario with a usage error (exit 2)', async () => {
    const run = await runCli(['bench', '--only', 'B9', '--no-write']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--only takes scenario ids from B1,B2,B3,B4,B5,B6,B7, got "B9"/);
  });
});
