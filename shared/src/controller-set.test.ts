import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './config.ts';
import { defineController } from './controller.ts';
import { checkControllers, configsPerController, controllerSlots } from './controller-set.ts';
import { InvalidArgumentError } from './errors.ts';

const named = (name: string, plural = name) =>
  defineController({ name, for: { group: 'example.com', version: 'v1', plural }, reconcile: async () => undefined });

describe('Function: controllerSlots (one process’s slots shared by its controllers)', () => {
  const cases: [string, number, number[], number[]][] = [
    ['one controller gets them all', 10, [1], [10]],
    ['equal shares split evenly', 10, [1, 1], [5, 5]],
    ['shares 2:1 of 10, the remainder to the larger fraction', 10, [2, 1], [7, 3]],
    ['three equal shares of 10 still add up to 10', 10, [1, 1, 1], [4, 3, 3]],
    ['each gets a slot even when there are fewer slots than controllers', 2, [1, 1, 1], [1, 1, 1]],
    ['a tiny share still gets one slot', 20, [100, 0.01], [19, 1]],
  ];
  for (const [what, total, shares, expected] of cases) {
    it(what, () => {
      const slots = controllerSlots(
        total,
        shares.map((share, i) => ({ name: `c${i}`, share })),
      );
      assert.deepEqual([...slots.values()], expected);
    });
  }
});

describe('Function: checkControllers (what a controller module exports)', () => {
  it('takes one controller or an array of them', () => {
    assert.deepEqual(
      checkControllers(named('widgets')).map((c) => c.name),
      ['widgets'],
    );
    assert.deepEqual(
      checkControllers([named('widgets'), named('gadgets')]).map((c) => c.name),
      ['widgets', 'gadgets'],
    );
  });

  it('refuses two controllers of one name, an empty array, and says which entry is invalid', () => {
    assert.throws(() => checkControllers([named('widgets'), named('widgets', 'gizmos')]), /two controllers are named "widgets"/);
    assert.throws(() => checkControllers([]), InvalidArgumentError);
    assert.throws(() => checkControllers([named('widgets'), { name: 'x' }]), /controller 1 of the exported array: .*reconcile/s);
  });
});

describe('Function: configsPerController', () => {
  it('gives each controller its slots as worker.concurrency, by controllers.<name>.share', () => {
    const config = loadConfig({ env: {}, overrides: { 'worker.concurrency': 12, 'controllers.widgets.share': 3 } });
    const configs = configsPerController(config, ['widgets', 'gadgets']);
    assert.equal(configs.get('widgets')?.worker.concurrency, 9);
    assert.equal(configs.get('gadgets')?.worker.concurrency, 3);
    assert.equal(config.worker.concurrency, 12, 'the process’s own configuration is left as it was');
  });

  it('refuses settings for a controller that is not loaded, naming the ones that are', () => {
    const config = loadConfig({ env: {}, overrides: { 'controllers.gizmos.share': 2 } });
    assert.throws(
      () => configsPerController(config, ['widgets', 'gadgets']),
      /controllers\.gizmos: no controller of that name is loaded \(loaded: widgets, gadgets\)/,
    );
  });
});
