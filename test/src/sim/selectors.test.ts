import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { ApiError } from './status.ts';

describe('Function: parseLabelSelector', () => {
  const labels = { app: 'web', tier: 'gold', 'example.com/zone': 'a', size: '5' };
  const cases: Array<[string, boolean]> = [
    ['app=web', true],
    ['app==web', true],
    ['app!=web', false],
    ['missing!=x', true],
    ['tier in (gold,silver)', true],
    ['tier in (silver)', false],
    ['tier notin (silver, bronze)', true],
    ['missing notin (x)', true],
    ['example.com/zone', true],
    ['!example.com/zone', false],
    ['!missing', true],
    ['app=web,tier in (gold),!missing', true],
    ['app=web,tier=silver', false],
    ['size>4', true],
    ['size<4', false],
    ['', true],
  ];
  for (const [selector, expected] of cases) {
    it(`"${selector}" ${expected ? 'matches' : 'does not match'}`, () => {
      const match = parseLabelSelector(selector);
      assert.equal(match === undefined ? true : match(labels), expected);
    });
  }

  it('rejects bad syntax with 400 BadRequest naming the selector', () => {
    for (const bad of ['app=we b', 'in (x)', 'tier in (a', '=x', 'a,,b']) {
      assert.throws(
        () => parseLabelSelector(bad),
        (error: unknown) => error instanceof ApiError && error.code === 400 && error.message.includes(bad),
        bad,
      );
    }
  });
});

describe('Function: parseFieldSelector', () => {
  it('matches metadata.name and metadata.namespace with =, == and !=, comma for AND', () => {
    const match = parseFieldSelector('metadata.name=a,metadata.namespace!=kube-system', false);
    assert.ok(match);
    assert.equal(match({ name: 'a', namespace: 'default' }), true);
    assert.equal(match({ name: 'a', namespace: 'kube-system' }), false);
    assert.equal(match({ name: 'b', namespace: 'default' }), false);
    assert.equal(parseFieldSelector('metadata.name==a', false)?.({ name: 'a', namespace: '' }), true);
  });

  it('names an unsupported field in the message, worded as kube-apiserver words it for custom resources', () => {
    assert.throws(
      () => parseFieldSelector('spec.x=1', true),
      /"spec.x" is not a known field selector: only "metadata.name", "metadata.namespace"/,
    );
    assert.throws(() => parseFieldSelector('spec.x=1', false), /field label not supported: spec.x/);
  });
});
