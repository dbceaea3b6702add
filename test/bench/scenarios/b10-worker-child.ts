// B10's worker process: runs a queue worker whose reconcile returns at once, on whichever queue the parent names, and says how many it ran.
//
// Usage: node b10-worker-child.ts <concurrency>
//   prints `ready` once loaded; then, per line on stdin:
//   `go <JSON {config, controller}>` starts a worker on that controller's queue and prints `ran <count>` every 100 ms;
//   `stop` closes it and prints `stopped`. SIGTERM closes it and exits.
import { createInterface } from 'node:readline';
import { type Config, type QueueWorker, startQueueWorker } from '@conveyor/shared';

const concurrency = Number(process.argv[2]);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: b10-worker-child.ts <concurrency>\n');
  process.exit(2);
}

let ran = 0;
let worker: QueueWorker | undefined;
const report = setInterval(() => {
  if (worker !== undefined) process.stdout.write(`ran ${ran}\n`);
}, 100);

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.startsWith('go ') && worker === undefined) {
    const { config, controller } = JSON.parse(line.slice(3)) as { config: Config; controller: string };
    ran = 0;
    worker = startQueueWorker({
      controller,
      redis: config.redis,
      queue: config.queue,
      concurrency,
      processor: async () => {
        ran += 1;
        return { kind: 'done' };
      },
    });
  } else if (line === 'stop') {
    const closing = worker?.close(2_000) ?? Promise.resolve();
    worker = undefined;
    void closing.then(() => process.stdout.write('stopped\n'));
  }
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  clearInterval(report);
  void (worker?.close(2_000) ?? Promise.resolve()).finally(() => process.exit(0));
});
