// What the generated pods ask for and may use, and the V8 heap settings that keep them there, from measurements of the Widget example's bundle (docs/operating.md#sizing).
//
// Node lets its heap grow with the allocation rate, not with what it keeps: a watcher's first sync of
// 20,000 Widgets, holding about 50 MiB alive, peaked at 300 MiB RSS (and a real cluster showed 377 MB),
// and a worker reconciling at any concurrency at 320–340 MiB. A small young generation
// (--max-semi-space-size=4) and a capped old space (--max-old-space-size=128) make V8 collect instead:
// the same sync and a relist peaked at 168, 180–200, 220 and 237 MiB at 10,000, 20,000, 50,000 and 100,000 objects
// (without the settings: 215, 300, 366 and 421 MiB), and the worker at 145–150 MiB
// at concurrency 1, 10 and 50, on the project's 2-core machine. The watcher's other sync-time memory is
// bounded by settings, not by the size of a list: a page of `watcher.pageSize`, a watch's line buffer
// (16 MiB), the enqueue buffer (20,000 requests).

/** NODE_OPTIONS of every generated Conveyor container. Raise the old space with what a watcher tracks (docs/operating.md#sizing). */
export const NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=128';

/**
 * The watcher's peak RSS during a first sync or a relist, up to 100,000 tracked objects, with NODE_OPTIONS: the
 * budget the memory test holds the bundle to at 20,000 Widgets. The limit leaves a quarter more.
 */
export const WATCHER_PEAK_BUDGET_MIB = 256;

export const watcherResources = { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '320Mi' } };

/** Container workers at the default concurrency of 10; a slot of the Widget example costs well under 1 MiB (measured up to 200). */
export const workerResources = { requests: { cpu: '250m', memory: '192Mi' }, limits: { memory: '320Mi' } };

/** The dispatcher holds no objects, only in-flight invocations. */
export const dispatcherResources = { requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '256Mi' } };

/** The container's environment: the heap settings above. */
export const nodeEnv = [{ name: 'NODE_OPTIONS', value: NODE_OPTIONS }];
