// The manual-enqueue API as the watcher serves it (bearer token, validation, reason `manual`), on a loopback port for the demo's one manual request.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Logger, ReconcileQueue } from '@conveyor/shared';
import { hashToken, TokenFileAuth } from '@conveyor/watcher/api/auth';
import { createReconcileApi, RECONCILE_PATH } from '@conveyor/watcher/api/reconcile-api';
import { WIDGETS } from '../widget-harness.ts';

export interface ManualApi {
  reconcile(namespace: string, name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startManualApi(queue: ReconcileQueue, logger: Logger, counted: () => void): Promise<ManualApi> {
  const token = randomBytes(24).toString('base64url');
  const handler = createReconcileApi({
    resource: { ...WIDGETS, namespaced: true },
    auth: new TokenFileAuth([{ user: 'demo', groups: [], sha256: hashToken(token) }]),
    enqueue: async (keys) => {
      await queue.enqueueBatch(keys.map((key) => ({ key, reason: 'manual' as const })));
      for (const _ of keys) counted();
    },
    audit: logger,
  });
  const server: Server = createServer((req, res) => {
    handler(req, res).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      () => res.writeHead(500).end(),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}${RECONCILE_PATH}`;
  return {
    async reconcile(namespace, name) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ namespace, name }),
      });
      if (response.status !== 202) throw new Error(`manual enqueue answered ${response.status}: ${await response.text()}`);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
