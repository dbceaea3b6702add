// Product code apart from test code: no production source file imports a test harness, a fake, the simulator or an example.
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PRODUCTION = ['shared/src/**/*.ts', 'watcher/src/**/*.ts', 'workers/src/**/*.ts'];
/** What production code may not import: the test workspace (simulator, harnesses, fakes) and the examples. */
const FORBIDDEN = [/['"]@conveyor\/test(\/|['"])/, /['"](\.\.\/)+test\//, /['"](\.\.\/)+examples\//];

describe('Layout: product code apart from test code', () => {
  it('no file under shared/src, watcher/src or workers/src (tests aside) imports test or example code', () => {
    const files = PRODUCTION.flatMap((pattern) => globSync(pattern, { cwd: root })).filter((file) => !file.endsWith('.test.ts'));
    assert.ok(files.length > 50, `found only ${files.length} production files: the patterns are wrong`);
    const offenders: string[] = [];
    for (const file of files) {
      for (const [n, line] of readFileSync(`${root}${file}`, 'utf8').split('\n').entries()) {
        if (/\b(import|from)\b/.test(line) && FORBIDDEN.some((pattern) => pattern.test(line)))
          offenders.push(`${file}:${n + 1}: ${line.trim()}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('what the kube-conveyor package ships (package/src, the CLI but the repository-only demo and bench) imports no test harness or example', () => {
    const REPOSITORY_ONLY = ['cli/main.ts', 'cli/demo-command.ts', 'cli/bench-command.ts'];
    const files = ['package/src/**/*.ts', 'cli/**/*.ts', 'test/src/**/*.ts']
      .flatMap((pattern) => globSync(pattern, { cwd: root }))
      .filter((file) => !file.endsWith('.test.ts') && !REPOSITORY_ONLY.includes(file));
    // The simulator and the test environment (test/src, @conveyor/test's main entry) are product code: they ship as kube-conveyor/testing.
    const shipsNot = [/['"]@conveyor\/test\/(support|fakes|fixtures|race)\//, /['"](\.\.\/)+test\/(?!src\/)/, /['"](\.\.\/)+examples\//];
    const offenders: string[] = [];
    for (const file of files) {
      for (const [n, line] of readFileSync(`${root}${file}`, 'utf8').split('\n').entries()) {
        if (/\b(import|from)\b/.test(line) && shipsNot.some((pattern) => pattern.test(line)))
          offenders.push(`${file}:${n + 1}: ${line.trim()}`);
      }
    }
    assert.ok(files.length > 40, `found only ${files.length} shipped files: the patterns are wrong`);
    assert.deepEqual(offenders, []);
  });

  it('cli/main.ts loads the simulator only when `conveyor sim` runs', () => {
    const main = readFileSync(`${root}cli/main.ts`, 'utf8');
    const sim = readFileSync(`${root}cli/sim-command.ts`, 'utf8');
    assert.doesNotMatch(main, /from ['"]@conveyor\/test/);
    assert.doesNotMatch(sim, /^import .*['"]@conveyor\/test['"]/m, 'sim-command imports the simulator statically');
    assert.match(sim, /await import\(['"]@conveyor\/test['"]\)/);
  });
});
