// The Greeting controller against the Kubernetes API simulator and a private Redis (kube-conveyor/testing; needs redis-server).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startTestEnv, type TestEnv } from 'kube-conveyor/testing';
import controller, { childName, GREETINGS, type Greeting } from './controller.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv({ controller, crds: [new URL('./crd.yaml', import.meta.url)] });
});
after(async () => {
  await env?.close();
});

const key = { ...GREETINGS, namespace: 'default', name: 'hello' };
const child = { group: '', version: 'v1', plural: 'configmaps', namespace: 'default', name: childName('hello') };

it('reconciles a new Greeting: its ConfigMap holds the message and it reports Ready', async () => {
  await env.client.create<Greeting>(GREETINGS, {
    apiVersion: 'example.com/v1',
    kind: 'Greeting',
    metadata: { name: 'hello', namespace: 'default' },
    spec: { message: 'Hello, world' },
  });
  await env.waitFor('the Greeting reconciled', async () => (await env.client.get<Greeting>(key)).status?.observedGeneration === 1);
  const object = await env.client.get<Greeting>(key);
  assert.equal(object.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  const configMap = await env.client.get<{ data?: Record<string, string> }>(child);
  assert.equal(configMap.data?.message, 'Hello, world');
});

it('removes the ConfigMap through the finalizer when the Greeting is deleted', async () => {
  await env.client.delete(key);
  await env.waitFor('the Greeting gone', async () => (await env.client.find(key)) === undefined);
  assert.equal(await env.client.find(child), undefined);
});
