// What a user of the command line reads when something is off: --help of every subcommand, range and type problems in Conveyor's words, "did you mean", and `conveyor config` keeping secrets and checking files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { program } from './main.ts';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
const dir = mkdtempSync(join(tmpdir(), 'conveyor-wording-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('CLI: --help of every subcommand', () => {
  // Every command the program offers, so a command added later is held to the same standard.
  for (const command of program.commands) {
    it(`conveyor ${command.name} --help describes each option with its default`, () => {
      const result = run([command.name, '--help']);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^usage: conveyor ${command.name}`));
      for (const [name, flag] of Object.entries(command.flags)) {
        const line = result.stdout.split('\n').find((l) => new RegExp(`^ +(-\\w, )?--${name}\\b`).test(l));
        assert.ok(line !== undefined, `--${name} is not described:\n${result.stdout}`);
        assert.ok(line.includes(flag.description), `--${name} lacks its description: ${line}`);
        assert.match(line, /; default: \S/, `--${name} lacks its default: ${line}`);
      }
    });
  }

  it('shows the default a flag takes from the configuration schema', () => {
    const worker = run(['worker', '--help']).stdout;
    assert.match(worker, /--concurrency <n> +reconciles at once in this process, from 1 to 10000; default: 10 \(worker\.concurrency\)/);
    assert.match(run(['status', '--help']).stdout, /--timeout <duration> .*; default: 10s \(cli\.timeout\)/);
  });
});

describe('CLI: problems in Conveyor’s words', () => {
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    [
      'a negative port',
      ['watch', '--controller', 'x.ts', '--port', '-1'],
      {},
      /^conveyor watch: --port must be a port number from 0 to 65535, got "-1"$/m,
    ],
    [
      'a negative concurrency',
      ['worker', '--controller', 'x.ts', '--concurrency', '-3'],
      {},
      /^conveyor worker: --concurrency must be a whole number from 1 to 10000, got "-3"$/m,
    ],
    ['an option given first', ['--bogus'], {}, /^conveyor: unknown option --bogus; give a command first/m],
    [
      'a misspelt option',
      ['worker', '--controler', 'x.ts'],
      {},
      /^conveyor worker: unknown option --controler; did you mean --controller\?$/m,
    ],
    ['a misspelt command', ['wroker'], {}, /^conveyor: unknown command "wroker"; did you mean worker\?$/m],
    ['an option without its value', ['status', '--top'], {}, /^conveyor status: --top needs a value \(<n>\)$/m],
    [
      'a number that is not one, from the environment',
      ['config'],
      { CONVEYOR_WORKER__CONCURRENCY: 'lots' },
      /worker\.concurrency: must be a whole number from 1 to 10000, got "lots" \[from CONVEYOR_WORKER__CONCURRENCY\]/,
    ],
    [
      'a boolean that is not one, from the environment',
      ['config'],
      { CONVEYOR_KUBE__IN_CLUSTER: 'yes' },
      /kube\.inCluster: must be true or false, got "yes" \[from CONVEYOR_KUBE__IN_CLUSTER\]/,
    ],
    [
      'an unknown section, from the environment',
      ['config'],
      { CONVEYOR_WORKR__X: '1' },
      /workr: unknown setting; did you mean worker\? \[from CONVEYOR_WORKR__X\]/,
    ],
  ];
  for (const [what, args, env, message] of cases) {
    it(`exits 2 naming ${what}`, () => {
      const result = run(args, env);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /ambiguous|expected number|received string/);
    });
  }

  it('takes a number written with an exponent from the environment', () => {
    const result = run(['config', '--json'], { CONVEYOR_WORKER__CONCURRENCY: '1e3' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).worker.concurrency, 1000);
  });
});

describe('CLI: conveyor config', () => {
  it('redacts every secret: passwords inside URLs and tokens', () => {
    const config = file(
      'secrets.yaml',
      'redis:\n  url: redis://:hunter2@127.0.0.1:6379/0\nkube:\n  server: https://k8s.example\n  token: sekret-token\nlambda:\n  endpoint: https://user:pa55word@lambda.example\n',
    );
    const result = run(['config', '--config', config]);
    assert.equal(result.status, 0, result.stderr);
    for (const secret of ['hunter2', 'sekret-token', 'pa55word']) assert.ok(!result.stdout.includes(secret), `${secret} printed`);
    const printed = JSON.parse(result.stdout) as { redis: { url: string }; kube: { token: string }; lambda: { endpoint: string } };
    assert.equal(printed.redis.url, 'redis://:[redacted]@127.0.0.1:6379/0');
    assert.equal(printed.kube.token, '[redacted]');
    assert.equal(printed.lambda.endpoint, 'https://user:[redacted]@lambda.example/');
  });

  it('exits 2 naming every file the configuration names that does not exist, and where it was named', () => {
    const config = file('files.yaml', 'controller: ./nowhere/controller.ts\napi:\n  tokenFile: /nonexistent/tokens.yaml\n');
    const result = run(['config', '--config', config], { KUBECONFIG: '/nonexistent/kubeconfig' });
    assert.equal(result.status, 2, result.stdout);
    assert.match(result.stderr, /3 problems/);
    assert.match(result.stderr, /controller: file \.\/nowhere\/controller\.ts does not exist \[from .*files\.yaml\]/);
    assert.match(result.stderr, /api\.tokenFile: file \/nonexistent\/tokens\.yaml does not exist/);
    assert.match(result.stderr, /kube\.kubeconfig: file \/nonexistent\/kubeconfig does not exist \[from KUBECONFIG\]/);
  });

  it('exits 2 on an empty file instead of running on defaults', () => {
    const result = run(['config', '--config', file('empty.yaml', '\n# nothing yet\n')]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /holds no settings/);
  });
});
