// Serves a request handler such as createReconcileApi's on a loopback port for tests; anything it does not handle is 404.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RECONCILE_PATH } from '@conveyor/watcher/api/reconcile-api';

export async function serveReconcileApi(
  api: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    void api(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${RECONCILE_PATH}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
