// A local HTTP server that answers Lambda's Invoke API the way AWS does, for driving the real LambdaClient
// through each ending of an invocation (result, function error, throttle, slow answer, garbage).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LambdaClient } from '@aws-sdk/client-lambda';

export type FakeAnswer =
  | { kind: 'result'; body: unknown }
  | { kind: 'function-error'; message: string }
  | { kind: 'throttle'; retryAfterSeconds?: number }
  | { kind: 'hang'; ms: number }
  | { kind: 'raw'; status: number; body: string }
  /** An error as AWS sends one: its type in `x-amzn-errortype` (AccessDeniedException, ResourceNotFoundException, …). */
  | { kind: 'aws-error'; status: number; type: string; message: string };

export class FakeLambda {
  readonly invocations: { functionName: string; payload: unknown }[] = [];
  private readonly server: Server;
  private answer: (payload: unknown) => FakeAnswer;

  private constructor(server: Server, answer: (payload: unknown) => FakeAnswer) {
    this.server = server;
    this.answer = answer;
  }

  static async start(answer: (payload: unknown) => FakeAnswer): Promise<FakeLambda> {
    const fake: FakeLambda = new FakeLambda(
      createServer((req, res) => void fake.handle(req, res)),
      answer,
    );
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  answerWith(answer: (payload: unknown) => FakeAnswer): void {
    this.answer = answer;
  }

  client(): LambdaClient {
    return new LambdaClient({
      endpoint: this.endpoint,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    if (req.method !== 'POST' || match === null) {
      res
        .writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' })
        .end('{"message":"not found"}');
      return;
    }
    const payload = JSON.parse(Buffer.concat(chunks).toString() || 'null') as unknown;
    this.invocations.push({ functionName: decodeURIComponent(match[1] ?? ''), payload });
    const answer = this.answer(payload);
    switch (answer.kind) {
      case 'result':
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' }).end(JSON.stringify(answer.body));
        return;
      case 'function-error':
        res
          .writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' })
          .end(JSON.stringify({ errorType: 'Error', errorMessage: answer.message, trace: [] }));
        return;
      case 'throttle':
        res
          .writeHead(429, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'TooManyRequestsException',
            ...(answer.retryAfterSeconds === undefined ? {} : { 'retry-after': String(answer.retryAfterSeconds) }),
          })
          .end(JSON.stringify({ Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' }));
        return;
      case 'hang':
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"done"}'), answer.ms).unref();
        return;
      case 'raw':
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
        return;
      case 'aws-error':
        res
          .writeHead(answer.status, { 'content-type': 'application/json', 'x-amzn-errortype': answer.type })
          .end(JSON.stringify({ Type: 'User', message: answer.message }));
        return;
    }
  }
}
