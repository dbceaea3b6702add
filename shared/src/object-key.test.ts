import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidKeyError } from './errors.ts';
import { formatKey, jobIdToKey, keyToJobId, type ObjectKey, parseKey, validateObjectName } from './object-key.ts';

const widget = (name: string, namespace = 'default'): ObjectKey => ({
  group: 'example.com',
  version: 'v1',
  plural: 'widgets',
  namespace,
  name,
});

describe('Object keys', () => {
  it('formats group, core and cluster-scoped keys the way kubectl users read them', () => {
    assert.equal(formatKey(widget('w-1')), 'example.com/v1/widgets/default/w-1');
    assert.equal(formatKey({ group: '', version: 'v1', plural: 'configmaps', namespace: 'ns', name: 'cm' }), 'v1/configmaps/ns/cm');
    assert.equal(
      formatKey({ group: '', version: 'v1', plural: 'namespaces', namespace: '', name: 'kube-system' }),
      'v1/namespaces//kube-system',
    );
  });

  const awkward: ObjectKey[] = [
    widget('a.b.c'),
    widget('123'),
    widget('0'),
    widget('system:controller:widgets'),
    { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespace: '', name: 'system:aggregate-to-edit' },
    { group: '', version: 'v1', plural: 'namespaces', namespace: '', name: '42' },
    { group: 'example.com', version: 'v1beta2', plural: 'widgets', namespace: 'n-1', name: '1e3' },
  ];
  for (const key of awkward) {
    it(`round-trips ${formatKey(key)} through its string and its job id`, () => {
      assert.deepEqual(parseKey(formatKey(key)), key);
      const id = keyToJobId(key);
      assert.ok(!id.includes(':'), `job id ${id} contains ':'`);
      assert.ok(!/^\d+$/.test(id), `job id ${id} looks like an integer`);
      assert.deepEqual(jobIdToKey(id), key);
    });
  }

  it('round-trips any valid name (property)', () => {
    const nameChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-.:_'.split(''));
    const name = fc.string({ unit: nameChar, minLength: 1, maxLength: 60 }).filter((n) => n !== '.' && n !== '..');
    fc.assert(
      fc.property(name, (n) => {
        const key = widget(n);
        const id = keyToJobId(key);
        return !id.includes(':') && !/^\d+$/.test(id) && formatKey(jobIdToKey(id)) === formatKey(key);
      }),
    );
  });

  const bad: [string, RegExp][] = [
    ['widgets/default/w-1', /must be <apiVersion>\/<resource>\/<namespace>\/<name>/],
    ['example.com/v1/widgets/default/', /name is empty/],
    ['example.com/v1/Widgets/default/x', /resource "Widgets"/],
    ['example.com/one/widgets/default/x', /version "one"/],
    ['example.com/v1/widgets/Default/x', /namespace "Default"/],
    ['/v1/configmaps/default/x', /empty group/],
    ['v1/configmaps/default/..', /name ".." may not be "." or ".."/],
    ['a/b/c/d/e/f', /must be/],
  ];
  for (const [text, message] of bad) {
    it(`rejects "${text}" naming the bad part`, () => {
      assert.throws(
        () => parseKey(text),
        (error: unknown) => error instanceof InvalidKeyError && message.test(error.message),
      );
    });
  }

  it('rejects a job id with an unknown escape', () => {
    assert.throws(() => jobIdToKey('example.com/v1/widgets/default/a%2Fb'), InvalidKeyError);
  });
});

describe('Function: validateObjectName', () => {
  const key = (plural: string, name: string, group = ''): ObjectKey => ({ group, version: 'v1', plural, namespace: '', name });
  const cases: [string, ObjectKey, boolean][] = [
    ['a Widget named as a DNS subdomain', key('widgets', 'w-1.blue', 'example.com'), true],
    ['a Widget with an uppercase letter', key('widgets', 'W-1', 'example.com'), false],
    ['a Widget with ":"', key('widgets', 'w:1', 'example.com'), false],
    ['a Widget with "?"', key('widgets', 'w?1', 'example.com'), false],
    ['a Widget with "#"', key('widgets', 'w#1', 'example.com'), false],
    ['a Widget starting with "-"', key('widgets', '-w', 'example.com'), false],
    ['a ConfigMap with "."', key('configmaps', 'app.config'), true],
    ['a Namespace with "." (a DNS label has none)', key('namespaces', 'team.a'), false],
    ['a Service starting with a digit (DNS-1035)', key('services', '1web'), false],
    ['a Service named as a DNS-1035 label', key('services', 'web-1'), true],
    ['a ClusterRole with ":" (a path segment)', key('clusterroles', 'system:aggregate-to-edit', 'rbac.authorization.k8s.io'), true],
    ['a ClusterRole with a NUL', key('clusterroles', 'a\u0000b', 'rbac.authorization.k8s.io'), false],
    ['a Widget with U+202E', key('widgets', 'a\u202Eb', 'example.com'), false],
  ];
  for (const [what, k, valid] of cases) {
    it(`${valid ? 'accepts' : 'refuses'} ${what}`, () => {
      if (valid) validateObjectName(k);
      else
        assert.throws(
          () => validateObjectName(k),
          (error: unknown) => error instanceof InvalidKeyError && error.part === 'name',
        );
    });
  }
});
