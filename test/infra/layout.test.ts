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

  it('cli/main.ts loads the simulator only when `conveyor sim` runs', () => {
    const main = readFileSync(`${root}cli/main.ts`, 'utf8');
    const sim = readFileSync(`${root}cli/sim-command.ts`, 'utf8');
    assert.doesNotMatch(main, /from ['"]@conveyor\/test/);
    assert.doesNotMatch(sim, /^import .*['"]@conveyor\/test['"]/m, 'sim-command imports the simulator statically');
    assert.match(sim, /await import\(['"]@conveyor\/test['"]\)/);
  });
});
