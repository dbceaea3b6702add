import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/conveyor.mjs', import.meta.url));
const kubectlMissing = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0 ? false : 'kubectl is not on PATH';

/** Starts `conveyor sim` and resolves once it printed its URL. */
async function startSim(args: string[]): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [bin, 'sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`conveyor sim printed no URL: ${output}`)), 20_000);
    const check = () => {
      const match = /serving the Kubernetes API on (\S+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => reject(new Error(`conveyor sim exited ${String(code)}: ${output}`)));
  });
  return { child, url, output: () => output };
}

describe('CLI: conveyor sim', () => {
  it('exits 2 naming a bad --port', () => {
    const result = spawnSync(process.execPath, [bin, 'sim', '--port', 'eighty'], { encoding: 'utf8' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--port must be a port number/);
  });

  it('exits non-zero, serving nothing, when it cannot write --kubeconfig-out', () => {
    const result = spawnSync(process.execPath, [bin, 'sim', '--port', '0', '--kubeconfig-out', '/nonexistent/dir/k'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--kubeconfig-out: cannot write \/nonexistent\/dir\/k: ENOENT/);
    assert.doesNotMatch(result.stdout, /serving the Kubernetes API/);
  });

  it('stops when the npx that launched it exits (a shell’s `kill $!`), instead of serving on, orphaned', async () => {
    // What `npx conveyor sim … &` runs: npm, then a shell, then node. Killing npm ends the shell; the
    // shell here stands in for both (`; true` keeps it from exec-ing node, as npm's does not).
    const launcher = spawn('sh', ['-c', `"${process.execPath}" "${bin}" sim --port 0; true`], {
      env: { PATH: process.env.PATH ?? '', npm_command: 'exec' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    launcher.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`conveyor sim printed no URL: ${output}`)), 30_000);
      launcher.stdout?.on('data', () => {
        const match = /serving the Kubernetes API on (\S+)/.exec(output);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    launcher.kill('SIGKILL');
    let gone = false;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && !gone; ) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      gone = await fetch(`${url}/version`).then(
        () => false,
        () => true,
      );
    }
    assert.ok(gone, `conveyor sim still serves ${url} after its launcher exited`);
  });

  describe('with kubectl', { skip: kubectlMissing }, () => {
    let dir: string;
    let sim: Awaited<ReturnType<typeof startSim>>;
    let kubeconfig: string;
    const kubectl = (...args: string[]) => {
      const result = spawnSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(result.status, 0, `kubectl ${args.join(' ')} failed: ${result.stderr}`);
      return result.stdout;
    };
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'conveyor-sim-cli-'));
      kubeconfig = join(dir, 'kubeconfig');
      sim = await startSim(['--port', '0', '--tls', '--kubeconfig-out', kubeconfig]);
    });
    after(() => {
      if (sim.child.exitCode === null) sim.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('writes a private kubeconfig and never prints the token', () => {
      assert.equal(statSync(kubeconfig).mode & 0o077, 0, 'kubeconfig is readable by its owner only');
      const token = (JSON.parse(readFileSync(kubeconfig, 'utf8')) as { users: Array<{ user: { token: string } }> }).users[0]?.user.token;
      assert.ok(token);
      assert.ok(!sim.output().includes(token));
      assert.match(sim.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    });

    it('serves kubectl apply, get, patch and delete', () => {
      const manifest = join(dir, 'app.yaml');
      writeFileSync(
        manifest,
        [
          'apiVersion: v1',
          'kind: Namespace',
          'metadata: {name: shop}',
          '---',
          'apiVersion: v1',
          'kind: ConfigMap',
          'metadata: {name: settings, namespace: shop, labels: {app: shop}}',
          'data: {color: blue}',
        ].join('\n'),
      );
      assert.match(kubectl('apply', '-f', manifest), /configmap\/settings created/);
      assert.match(kubectl('apply', '-f', manifest), /configmap\/settings unchanged/);
      assert.equal(kubectl('get', 'configmap', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.color}'), 'blue');
      assert.match(kubectl('get', 'configmaps', '-n', 'shop', '-l', 'app=shop', '-o', 'name'), /configmap\/settings/);
      kubectl('patch', 'configmap', 'settings', '-n', 'shop', '-p', '{"data":{"color":"green"}}');
      assert.equal(kubectl('get', 'configmap', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.color}'), 'green');
      kubectl('patch', 'configmap', 'settings', '-n', 'shop', '--type=json', '-p', '[{"op":"replace","path":"/data/color","value":"red"}]');
      assert.equal(kubectl('get', 'configmap', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.color}'), 'red');
      assert.match(kubectl('delete', 'configmap', 'settings', '-n', 'shop'), /deleted/);
      const gone = spawnSync('kubectl', ['--kubeconfig', kubeconfig, 'get', 'configmap', 'settings', '-n', 'shop'], { encoding: 'utf8' });
      assert.notEqual(gone.status, 0);
      assert.match(gone.stderr, /NotFound/);
      assert.match(kubectl('get', 'namespaces', '-o', 'name'), /namespace\/default/);
    });

    it('stops on SIGTERM with exit code 0', async () => {
      const exited = new Promise<number | null>((resolve) => sim.child.once('exit', resolve));
      sim.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(sim.output(), /SIGTERM: stopping/);
    });
  });
});
