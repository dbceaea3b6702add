// Samples of docs/operating.md: reading depth and parked requests, retrying them, and asking for a reconcile over HTTP.
import { createLogger, loadConfig, ReconcileQueue } from '@conveyor/shared';

// --- parked ---
const config = loadConfig({ file: 'conveyor.yaml' });
const queue = new ReconcileQueue(
  { controller: 'widgets', redis: config.redis, queue: config.queue },
  { logger: createLogger({ level: 'info' }) },
);

const depth = await queue.getDepth(); // { waiting, prioritized, delayedDue, delayedLater, active, parked }
for (const parked of await queue.listParked(20)) {
  console.log(parked.key.namespace, parked.key.name, parked.attempts, parked.error);
}
if (depth.parked > 0) await queue.retryParked(); // every parked request, with fresh attempts
await queue.close();
// --- end parked ---

// --- manual ---
export async function reconcileNow(watcherUrl: string, token: string, namespace: string, name: string): Promise<void> {
  const response = await fetch(`${watcherUrl}/v1/reconcile`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ namespace, name }),
  });
  if (response.status !== 202) throw new Error(`reconcile request refused: ${response.status} ${await response.text()}`);
}
// --- end manual ---
