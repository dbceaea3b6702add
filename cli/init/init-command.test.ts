// conveyor init: the files of a new project, the flags that name its resource, and refusing to overwrite.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { main } from '../main.ts';
import { projectFiles } from './project-files.ts';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('CLI: conveyor init', () => {
  it('writes a project for the resource named by the flags, depending on kube-conveyor', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'conveyor-init-')), 'site-ctrl');
    const result = await run('init', dir, '--kind', 'Site', '--group', 'web.example.org', '--version', 'v1beta1');
    assert.equal(result.code, 0, result.err);
    for (const file of ['package.json', 'tsconfig.json', 'controller.ts', 'controller.test.ts', 'crd.yaml', 'conveyor.yaml', 'README.md'])
      assert.ok(existsSync(join(dir, file)), file);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
    assert.equal(pkg.name, 'site-ctrl');
    assert.match(pkg.dependencies['kube-conveyor'] ?? '', /^\^\d+\.\d+\.\d+$/);
    const crd = parseYaml(readFileSync(join(dir, 'crd.yaml'), 'utf8')) as {
      metadata: { name: string };
      spec: { versions: { name: string }[] };
    };
    assert.equal(crd.metadata.name, 'sites.web.example.org');
    assert.equal(crd.spec.versions[0]?.name, 'v1beta1');
    const controller = readFileSync(join(dir, 'controller.ts'), 'utf8');
    assert.match(controller, /from 'kube-conveyor'/);
    assert.match(controller, /plural: 'sites', kind: 'Site'/);
    assert.match(readFileSync(join(dir, 'README.md'), 'utf8'), /npm install && npm test\nnpx conveyor build\n/);
  });

  it('refuses to overwrite a project that is already there, and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-init-'));
    writeFileSync(join(dir, 'controller.ts'), '// mine\n');
    const result = await run('init', dir);
    assert.equal(result.code, 2);
    assert.match(result.err, /already has controller\.ts/);
    assert.equal(readFileSync(join(dir, 'controller.ts'), 'utf8'), '// mine\n');
    assert.ok(!existsSync(join(dir, 'package.json')));
  });

  for (const [flag, value, message] of [
    ['--kind', 'site', /--kind must be a CamelCase/],
    ['--group', 'example', /--group must be a DNS subdomain/],
    ['--version', '1', /--version must look like v1/],
    ['--plural', 'Sites', /--plural must be lowercase/],
  ] as const) {
    it(`exits 2 naming ${flag} when it is ${value}`, async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'conveyor-init-')), 'x');
      const result = await run('init', dir, flag, value);
      assert.equal(result.code, 2);
      assert.match(result.err, message);
      assert.ok(!existsSync(dir));
    });
  }

  it('writes the controller and test docs/getting-started.md shows (docs/examples/greetings/, which the docs test holds the page to)', () => {
    const files = projectFiles({
      name: 'greetings',
      group: 'example.com',
      version: 'v1',
      kind: 'Greeting',
      plural: 'greetings',
      conveyorVersion: '^0.1.0',
    });
    for (const name of ['controller.ts', 'controller.test.ts']) {
      const shown = readFileSync(new URL(`../../docs/examples/greetings/${name}`, import.meta.url), 'utf8');
      assert.equal(shown, files[name], name);
    }
  });
});
