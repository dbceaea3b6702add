// An HTTP proxy between the dispatcher and a Lambda endpoint that can answer TooManyRequestsException (429) for a while.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class LambdaFaultProxy {
  /** Requests answered with 429 so far. */
  throttled = 0;
  forwarded = 0;
  private throttleUntil = 0;
  private readonly server: Server;

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(target: string): Promise<LambdaFaultProxy> {
    const upstream = new URL(target);
    const proxy: LambdaFaultProxy = new LambdaFaultProxy(
      createServer((req, res) => {
        if (Date.now() < proxy.throttleUntil) {
          proxy.throttled += 1;
          req.resume();
          res
            .writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException', 'retry-after': '1' })
            .end(JSON.stringify({ Reason: 'ConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' }));
          return;
        }
        proxy.forwarded += 1;
        const forward = request(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forward.on('error', () => res.writeHead(502).end());
        req.pipe(forward);
      }),
    );
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  throttleFor(ms: number): void {
    this.throttleUntil = Date.now() + ms;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
