// `npm run lambda:package` packages the zip conveyor build made, offline, and the handler inside it answers as a reconcile handler.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildWidgetArtifacts } from '../support/widget-build.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('Lambda packaging', () => {
  it('packages the zip conveyor build wrote, with no network and no AWS credentials', async () => {
    const build = await buildWidgetArtifacts();
    const out = mkdtempSync(join(tmpdir(), 'conveyor-sls-'));
    const env = { ...process.env };
    delete env.AWS_ACCESS_KEY_ID;
    delete env.AWS_SECRET_ACCESS_KEY;
    const result = spawnSync(process.execPath, ['scripts/serverless.mjs', 'package', '--package', out], {
      cwd: root,
      env,
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    const zip = readFileSync(join(root, build.out, 'lambda.zip'));
    assert.ok(zip.includes(`${build.out}/lambda/handler.mjs`), 'the zip holds the handler bundle where serverless.yml says');
    const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: { Handler?: string; Runtime?: string; Code?: { S3Key?: string } } }>;
    };
    const fn = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function');
    assert.equal(fn?.Properties.Handler, `${build.out}/lambda/handler.handler`);
    assert.match(fn?.Properties.Code?.S3Key ?? '', /lambda\.zip$/, 'the function is deployed from the zip conveyor build wrote');
    assert.match(fn?.Properties.Runtime ?? '', /^nodejs2[2-9]\.x$/);

    // The handler runs on its own: a request it cannot read is answered as terminal, without any connection.
    const bundle = (await import(pathToFileURL(join(root, build.out, 'lambda', 'handler.mjs')).href)) as {
      handler: (event: unknown) => Promise<{ kind: string; code?: string }>;
    };
    const outcome = await bundle.handler({ hello: 'world' });
    assert.equal(outcome.kind, 'terminal');
    assert.equal(outcome.code, 'PAYLOAD_INVALID');
  });
});
