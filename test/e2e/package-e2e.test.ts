// The package as a user gets it, outside this repository: npm pack, conveyor init, the project's own npm test,
// conveyor build, and the bundle alone in an empty directory running as watcher and worker against `conveyor sim`.
//
// The slowest test of the suite (30–40 s on a 2-core machine: most of it npm installing the tarball's
// dependencies from the local npm cache, and tsc). It needs the npm registry or a warm npm cache, and redis-server.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createKubeConfig, KubeApiClient, type KubeObject, unlimitedBudget } from '@conveyor/shared';
import { parse as parseYaml } from 'yaml';
import { RedisServer } from '../support/redis-server.ts';
import { waitFor } from '../support/wait-for.ts';

const packageDir = fileURLToPath(new URL('../../package/', import.meta.url));
// Everything runs on this Node (the repository's Node 24): npm's own `node` shebang finds it first on PATH. Without
// NODE_TEST_CONTEXT, the project's `node --test` reports as it would for a user instead of to this test runner.
const { NODE_TEST_CONTEXT: _ownRunner, ...inherited } = process.env;
const env = {
  ...inherited,
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
  npm_config_update_notifier: 'false',
};

function run(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): string {
  const result = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs });
  assert.equal(result.status, 0, `${cmd} ${args.join(' ')} in ${cwd} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], cwd: string): Proc {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function stop(proc: Proc | undefined): Promise<number | null | undefined> {
  if (proc === undefined || proc.child.exitCode !== null) return proc?.child.exitCode;
  proc.child.kill('SIGTERM');
  return await proc.exited;
}

const GREETINGS = { group: 'example.com', version: 'v1', plural: 'greetings' };
const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };

describe('kube-conveyor from its tarball, in an empty project outside the repository', () => {
  const root = mkdtempSync(join(tmpdir(), 'conveyor-package-e2e-'));
  const project = join(root, 'demo-ctrl');
  let tarball: string;
  let redis: RedisServer | undefined;
  const procs: Proc[] = [];

  before(() => {
    // `npm pack` runs the package's prepack build: JavaScript and declarations from the sources.
    run('npm', ['pack', '--pack-destination', root], packageDir);
    const packed = readdirSync(root).find((f) => /^kube-conveyor-.*\.tgz$/.test(f));
    assert.ok(packed !== undefined, `npm pack left no tarball in ${root}`);
    tarball = join(root, packed);
  });
  after(async () => {
    for (const proc of procs) await stop(proc);
    await redis?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('conveyor init writes a project whose own npm test passes with the tarball installed', () => {
    run(process.execPath, [join(packageDir, 'bin', 'conveyor.js'), 'init', 'demo-ctrl'], root);
    // The tarball's dependencies come from the registry, or the npm cache this repository's `npm ci` filled.
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project);
    const output = run('npm', ['test'], project);
    assert.match(output, /# pass 2|ℹ pass 2/);
  });

  it('conveyor build writes the bundle, a Dockerfile whose every COPY source exists, manifests, the Lambda zip and serverless.yml', () => {
    run(process.execPath, [join(project, 'node_modules', '.bin', 'conveyor'), 'build'], project);
    const dist = join(project, 'dist');
    for (const file of [
      'bundle.mjs',
      'Dockerfile',
      '.dockerignore',
      'lambda.zip',
      'serverless.yml',
      'manifests/overlays/sharded/kustomization.yaml',
    ])
      assert.ok(existsSync(join(dist, file)), `dist/${file}`);
    const dockerfile = readFileSync(join(dist, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM node:24-slim$/m);
    assert.match(dockerfile, /^USER \d+/m);
    const copies = [...dockerfile.matchAll(/^COPY (\S+) /gm)].map((m) => m[1] as string);
    assert.ok(copies.length > 0);
    for (const source of copies) assert.ok(existsSync(join(dist, source)), `COPY ${source}: not in the build output`);
    const serverless = parseYaml(readFileSync(join(dist, 'serverless.yml'), 'utf8')) as { package: { artifact: string } };
    assert.ok(existsSync(join(dist, serverless.package.artifact)), 'serverless.yml names the zip the build wrote');
  });

  it('runs the bundle alone, with plain node, as watcher and worker: an object is reconciled, and cleaned up through the finalizer on delete', async () => {
    const alone = join(root, 'image');
    mkdirSync(alone);
    copyFileSync(join(project, 'dist', 'bundle.mjs'), join(alone, 'bundle.mjs'));
    redis = await RedisServer.start();
    const kubeconfig = join(root, 'sim.kubeconfig');
    const sim = start([join(project, 'node_modules', '.bin', 'conveyor'), 'sim', '--kubeconfig-out', kubeconfig], project);
    procs.push(sim);
    await waitFor('the simulator', () => sim.output().includes('kubeconfig with a bearer token written'), 30_000);
    const client = new KubeApiClient({
      kubeConfig: createKubeConfig({ kubeconfig, inCluster: false, insecureSkipTlsVerify: false }),
      budget: unlimitedBudget,
    });
    await client.create(
      { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions' },
      parseYaml(readFileSync(join(project, 'crd.yaml'), 'utf8')),
    );
    writeFileSync(
      join(alone, 'conveyor.yaml'),
      `redis:\n  url: ${redis.url}\nkube:\n  kubeconfig: ${kubeconfig}\nhttp:\n  host: 127.0.0.1\n  port: 0\nqueue:\n  backoff:\n    base: 50ms\n`,
    );
    const watcher = start(['bundle.mjs', 'watch', '--config', 'conveyor.yaml'], alone);
    const worker = start(['bundle.mjs', 'worker', '--config', 'conveyor.yaml'], alone);
    procs.push(watcher, worker);
    await waitFor(
      'the watcher serving',
      () => /"controller":"greetings".*"msg":"serving \/healthz \/readyz \/metrics on http/.test(watcher.output()),
      30_000,
    );

    const key = { ...GREETINGS, namespace: 'default', name: 'hello' };
    const child = { ...CONFIGMAPS, namespace: 'default', name: 'hello-greeting' };
    const example = parseYaml(readFileSync(join(project, 'example.yaml'), 'utf8')) as KubeObject & { metadata: { name: string } };
    await client.create(GREETINGS, example);
    type Greeting = KubeObject & { status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] } };
    const reconciled = async () => (await client.get<Greeting>(key)).status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    await waitFor(`the Greeting reconciled\n${watcher.output()}\n${worker.output()}`, reconciled, 60_000, 50);
    const configMap = await client.get<KubeObject & { data?: Record<string, string> }>(child);
    assert.equal(configMap.data?.message, 'Hello, world');
    assert.deepEqual((await client.get(key)).metadata.finalizers, ['example.com/cleanup']);

    await client.delete(key);
    await waitFor('the Greeting gone after its finalizer ran', async () => (await client.find(key)) === undefined, 60_000, 50);
    assert.equal(await client.find(child), undefined, 'finalize removed the ConfigMap');
    assert.equal(await stop(worker), 0, worker.output());
    assert.equal(await stop(watcher), 0, watcher.output());
  });
});
