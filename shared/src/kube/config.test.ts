// kube.caFile / kube.caData pin the API server's CA in kube.server mode: a real TLS handshake against a simulator that serves a certificate its own CA signed.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CaSignedTlsMaterial, caSignedCertificate, type KubeSimulator, startKubeSimulator } from '@conveyor/test';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { KubeApiClient } from './client.ts';
import { createKubeConfig } from './config.ts';

const NAMESPACES = { group: '', version: 'v1', plural: 'namespaces' };

describe('kube.caFile and kube.caData with kube.server', () => {
  let sim: KubeSimulator;
  let tls: CaSignedTlsMaterial;
  let dir: string;

  before(async () => {
    tls = caSignedCertificate('127.0.0.1');
    sim = await startKubeSimulator({ tls });
    dir = mkdtempSync(join(tmpdir(), 'conveyor-ca-'));
    writeFileSync(join(dir, 'ca.pem'), tls.ca);
    writeFileSync(join(dir, 'other-ca.pem'), caSignedCertificate('127.0.0.1').ca);
  });
  after(async () => {
    await sim?.close();
  });

  /** What a process started with these settings reads first: the default namespace. */
  const readDefaultNamespace = (settings: Record<string, string>) => {
    const config = loadConfig({ env: { CONVEYOR_KUBE__SERVER: sim.url, CONVEYOR_KUBE__TOKEN: sim.token, ...settings } });
    const client = new KubeApiClient({ kubeConfig: createKubeConfig(config.kube) });
    return client.get({ ...NAMESPACES, namespace: '', name: 'default' });
  };

  it('talks to the API server whose certificate the pinned CA signed (file, or base64 inline as Lambda passes it)', async () => {
    assert.equal((await readDefaultNamespace({ CONVEYOR_KUBE__CA_FILE: join(dir, 'ca.pem') })).metadata.name, 'default');
    const inline = Buffer.from(tls.ca).toString('base64');
    assert.equal((await readDefaultNamespace({ CONVEYOR_KUBE__CA_DATA: inline })).metadata.name, 'default');
  });

  it('refuses the connection when another CA is pinned, or none (the system CAs do not know the cluster)', async () => {
    await assert.rejects(readDefaultNamespace({ CONVEYOR_KUBE__CA_FILE: join(dir, 'other-ca.pem') }), (error: Error) =>
      /certificate|verify/i.test(`${error.message} ${String((error.cause as Error | undefined)?.message)}`),
    );
    await assert.rejects(readDefaultNamespace({}), (error: Error) =>
      /certificate|verify/i.test(`${error.message} ${String((error.cause as Error | undefined)?.message)}`),
    );
    // Empty is what serverless.yml sets when CONVEYOR_KUBE__CA_DATA is not given at deploy time: no CA pinned.
    await assert.rejects(readDefaultNamespace({ CONVEYOR_KUBE__CA_DATA: '' }));
  });

  it('says which setting is wrong before any request: an unreadable file, data that is no certificate, or a CA that would be ignored', () => {
    const problem = (env: Record<string, string>) => {
      try {
        createKubeConfig(loadConfig({ env: { CONVEYOR_KUBE__SERVER: sim.url, CONVEYOR_KUBE__TOKEN: sim.token, ...env } }).kube);
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        return error.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      }
      return 'no problem';
    };
    assert.match(problem({ CONVEYOR_KUBE__CA_FILE: join(dir, 'missing.pem') }), /^kube.caFile: cannot read the CA file: .*ENOENT/);
    assert.match(problem({ CONVEYOR_KUBE__CA_DATA: 'bm90IGEgY2VydA==' }), /^kube.caData: is not base64 of a PEM certificate/);
    assert.match(
      problem({ CONVEYOR_KUBE__CA_FILE: join(dir, 'ca.pem'), CONVEYOR_KUBE__INSECURE_SKIP_TLS_VERIFY: 'true' }),
      /^kube.caFile: cannot be combined with kube.insecureSkipTlsVerify/,
    );
    assert.match(
      problem({ CONVEYOR_KUBE__CA_FILE: join(dir, 'ca.pem'), CONVEYOR_KUBE__CA_DATA: Buffer.from(tls.ca).toString('base64') }),
      /kube.caData: set kube.caFile or kube.caData, not both/,
    );
    assert.throws(
      () => loadConfig({ env: { CONVEYOR_KUBE__CA_FILE: join(dir, 'ca.pem') } }),
      (error: ConfigError) => error.problems[0]?.path === 'kube.caFile' && /applies to kube.server only/.test(error.problems[0].message),
    );
  });
});
