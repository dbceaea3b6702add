import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, redactConfig } from './config.ts';
import { ConfigError } from './errors.ts';

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'conveyor-config-')), 'conveyor.yaml');
  writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): { path: string; message: string; source?: string }[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return [...error.problems];
  }
  assert.fail('expected the configuration to be rejected');
}

describe('Function: loadConfig', () => {
  it('turns tracing on from the standard OTEL_* variables only, and reports what Conveyor cannot export', () => {
    assert.equal(loadConfig({ env: {} }).tracing.enabled, false, 'off by default');
    const on = loadConfig({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_SERVICE_NAME: 'widgets-watcher',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      },
    });
    assert.deepEqual(on.tracing, {
      enabled: true,
      serviceName: 'widgets-watcher',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
    });
    assert.equal(loadConfig({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' } }).tracing.enabled, false);
    assert.equal(
      loadConfig({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces', OTEL_TRACES_EXPORTER: 'none' } }).tracing.enabled,
      false,
    );
    assert.throws(
      () =>
        loadConfig({
          env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_TRACES_SAMPLER: 'sometimes' },
        }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.some((p) => p.source === 'OTEL_EXPORTER_OTLP_PROTOCOL' && /http\/json, not grpc/.test(p.message)) &&
        error.problems.some((p) => p.source === 'OTEL_TRACES_SAMPLER'),
    );
  });

  it('gives documented defaults with no file and no environment', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.queue.backoff.base, 200);
    assert.equal(config.queue.backoff.max, 1_000_000);
    assert.equal(config.queue.attempts, 15);
    assert.equal(config.watcher.pageSize, 500);
    assert.equal(config.redis.url, 'redis://127.0.0.1:6379');
  });

  it('reads durations, numbers and booleans from a YAML file', () => {
    const file = configFile(
      'queue:\n  backoff:\n    base: 500ms\n    max: 10m\n  lockDuration: 5s\nworker:\n  concurrency: 4\nwatcher:\n  leaderElect: true\n',
    );
    const config = loadConfig({ file, env: {} });
    assert.equal(config.queue.backoff.base, 500);
    assert.equal(config.queue.backoff.max, 600_000);
    assert.equal(config.queue.lockDuration, 5_000);
    assert.equal(config.worker.concurrency, 4);
    assert.equal(config.watcher.leaderElect, true);
  });

  it('lets the environment override the file, and KUBECONFIG set kube.kubeconfig', () => {
    const file = configFile('worker:\n  concurrency: 4\n');
    const config = loadConfig({
      file,
      env: {
        CONVEYOR_WORKER__CONCURRENCY: '12',
        CONVEYOR_QUEUE__BACKOFF__BASE: '1s',
        CONVEYOR_API_BUDGET__QPS: '7.5',
        KUBECONFIG: '/k/config',
      },
    });
    assert.equal(config.worker.concurrency, 12);
    assert.equal(config.queue.backoff.base, 1_000);
    assert.equal(config.apiBudget.qps, 7.5);
    assert.equal(config.kube.kubeconfig, '/k/config');
  });

  it('reports every mistake of a file at once, each with its path and source', () => {
    const file = configFile('queue:\n  backoff:\n    base: 30\n  attempts: zero\nworker:\n  concurency: 4\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['queue.attempts', 'queue.backoff.base', 'worker.concurency']);
    const byPath = new Map(problems.map((p) => [p.path, p]));
    assert.match(byPath.get('queue.backoff.base')?.message ?? '', /no unit; write 30ms/);
    assert.equal(byPath.get('queue.attempts')?.message, 'must be a whole number from 1 to 1000, got "zero"');
    assert.equal(byPath.get('worker.concurency')?.message, 'unknown setting; did you mean worker.concurrency?');
    assert.equal(byPath.get('queue.attempts')?.source, file);
  });

  it('names the environment variable a bad value came from', () => {
    const problems = problemsOf(() => loadConfig({ env: { CONVEYOR_WORKER__CONCURRENCY: 'lots', CONVEYOR_REDIS__URL: 'http://x' } }));
    assert.deepEqual(problems.map((p) => [p.path, p.source]).sort(), [
      ['redis.url', 'CONVEYOR_REDIS__URL'],
      ['worker.concurrency', 'CONVEYOR_WORKER__CONCURRENCY'],
    ]);
  });

  it('rejects a file that is not a mapping, or not YAML', () => {
    assert.match(problemsOf(() => loadConfig({ file: configFile('- a\n- b\n'), env: {} }))[0]?.message ?? '', /mapping of sections/);
    assert.match(problemsOf(() => loadConfig({ file: configFile('queue: [unclosed\n'), env: {} }))[0]?.message ?? '', /not valid YAML/);
    assert.match(problemsOf(() => loadConfig({ file: '/nonexistent/conveyor.yaml', env: {} }))[0]?.message ?? '', /cannot read/);
  });

  it('rejects a shard outside its count and an explicit server without a token', () => {
    assert.equal(problemsOf(() => loadConfig({ env: { CONVEYOR_WATCHER__SHARD: '3/3' } }))[0]?.path, 'watcher.shard');
    assert.equal(problemsOf(() => loadConfig({ env: { CONVEYOR_KUBE__SERVER: 'https://k:6443' } }))[0]?.path, 'kube.server');
  });

  it('never prints a token in the redacted form', () => {
    const config = loadConfig({ env: { CONVEYOR_KUBE__SERVER: 'https://k:6443', CONVEYOR_KUBE__TOKEN: 's3cret-token' } });
    assert.ok(!JSON.stringify(redactConfig(config)).includes('s3cret-token'));
  });
});

describe('Function: loadConfig, given a directory', () => {
  it('merges its files in name order, later ones winning key by key (a base and an overlay in one ConfigMap)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-config-dir-'));
    writeFileSync(join(dir, 'conveyor.yaml'), 'api:\n  tokenReview: true\nworker:\n  concurrency: 10\n  shutdownGrace: 30s\n');
    writeFileSync(join(dir, 'overlay.yaml'), 'worker:\n  concurrency: 50\nautoscaler:\n  enabled: true\n');
    // What a mounted ConfigMap also holds: kubelet's hidden bookkeeping entries, which are not configuration.
    writeFileSync(join(dir, '..data'), 'not: [configuration');
    const config = loadConfig({ file: dir, env: {} });
    assert.equal(config.api.tokenReview, true);
    assert.equal(config.worker.concurrency, 50);
    assert.equal(config.worker.shutdownGrace, 30_000);
    assert.equal(config.autoscaler.enabled, true);
  });

  it('names the file a bad setting came from', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-config-dir-'));
    writeFileSync(join(dir, 'conveyor.yaml'), 'worker:\n  concurrency: 10\n');
    writeFileSync(join(dir, 'overlay.yaml'), 'worker:\n  concurrency: -1\n');
    const [problem] = problemsOf(() => loadConfig({ file: dir, env: {} }));
    assert.equal(problem?.path, 'worker.concurrency');
    assert.equal(problem?.source, join(dir, 'overlay.yaml'));
  });

  it('rejects a directory with no configuration file in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-config-dir-'));
    const [problem] = problemsOf(() => loadConfig({ file: dir, env: {} }));
    assert.match(problem?.message ?? '', /no \.yaml, \.yml or \.json file/);
  });
});
