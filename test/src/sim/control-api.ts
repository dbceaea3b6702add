// The simulator's control API under `/_sim/`: fault switches, watch and history controls, counters and the request log, behind the same bearer token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseFaultPatch } from './faults.ts';
import { parseJson, readBody, send } from './http-io.ts';
import type { ServerParts } from './server.ts';
import { ApiError, errors, statusBody } from './status.ts';

/** `/_sim/*`: fault switches and counters over HTTP, behind the same bearer token. */
export async function control(parts: ServerParts, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? 'GET';
  const route = `${method} ${path}`;
  switch (route) {
    case 'GET /_sim/faults':
      return send(res, 200, parts.faults.settings);
    case 'PUT /_sim/faults':
    case 'PATCH /_sim/faults':
    case 'POST /_sim/faults': {
      let patch: ReturnType<typeof parseFaultPatch>;
      try {
        patch = parseFaultPatch(parseJson(await readBody(req)));
      } catch (error) {
        if (error instanceof ApiError) throw error;
        throw errors.badRequest((error as Error).message);
      }
      return send(res, 200, parts.faults.update(patch));
    }
    case 'POST /_sim/faults/reset':
      parts.faults.reset();
      return send(res, 200, parts.faults.settings);
    case 'POST /_sim/watches/close':
      return send(res, 200, { closed: parts.control.closeWatches() });
    case 'POST /_sim/history/compact':
      parts.control.compactHistory();
      return send(res, 200, { compactedRevision: parts.store.compactedRevision });
    case 'GET /_sim/stats':
      return send(res, 200, { ...parts.control.stats(), memory: process.memoryUsage() });
    case 'GET /_sim/counters':
      return send(res, 200, parts.faults.counters());
    case 'GET /_sim/requests':
      return send(res, 200, parts.requestLog.snapshot());
    case 'POST /_sim/requests/reset':
    case 'DELETE /_sim/requests':
      parts.requestLog.reset();
      return send(res, 200, parts.requestLog.snapshot());
    case 'POST /_sim/counters/reset':
    case 'DELETE /_sim/counters':
      parts.faults.resetCounters();
      return send(res, 200, parts.faults.counters());
    default:
      return send(res, 404, statusBody(404, 'NotFound', `no simulator control endpoint ${route}`));
  }
}
