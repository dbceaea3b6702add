import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type KubeSimulator, startKubeSimulator } from './simulator.ts';

describe('Kubernetes API simulator: createObjects seeds objects in-process', () => {
  let sim: KubeSimulator;
  const get = (path: string) => fetch(`${sim.url}${path}`, { headers: { authorization: `Bearer ${sim.token}` } });
  before(async () => {
    sim = await startKubeSimulator();
  });
  after(async () => {
    await sim.close();
  });

  it('creates ordinary objects that lists and open watches see', async () => {
    const watch = await get(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${sim.resourceVersion()}`);
    const created = sim.createObjects({ group: '', version: 'v1', plural: 'configmaps' }, 'default', [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { k: '1' } },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' } },
    ]);
    assert.equal(created, 2);
    const list = (await (await get('/api/v1/namespaces/default/configmaps')).json()) as {
      items: { metadata: { name: string; uid: string; resourceVersion: string } }[];
    };
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      ['a', 'b'],
    );
    assert.ok(list.items.every((i) => i.metadata.uid !== '' && Number(i.metadata.resourceVersion) > 0));
    const reader = watch.body?.getReader();
    let text = '';
    while (reader !== undefined && (text.match(/\n/g) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /"type":"ADDED".*"name":"a"/);
    await reader?.cancel();
  });

  it('refuses what the API refuses (a duplicate name) and names an unknown resource', () => {
    assert.throws(
      () =>
        sim.createObjects({ group: '', version: 'v1', plural: 'configmaps' }, 'default', [
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } },
        ]),
      /already exists/,
    );
    assert.throws(
      () => sim.createObjects({ group: 'example.com', version: 'v1', plural: 'gadgets' }, 'default', []),
      /does not serve gadgets/,
    );
  });
});
