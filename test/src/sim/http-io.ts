// Reading requests and writing responses the way kube-apiserver frames them: body limits, JSON and YAML bodies, media types, query parameters, Warning headers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { warningHeaders } from './field-validation.ts';
import { ApiError, errors } from './status.ts';

const MAX_BODY_BYTES = 3 * 1024 * 1024;

export function send(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
  warnings: readonly string[] = [],
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const all: Record<string, string | string[]> = {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  };
  if (warnings.length > 0) all.Warning = warningHeaders(warnings);
  res.writeHead(code, all);
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'BadRequest', 'Request entity too large: limit is 3145728');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Decodes a create/update body: JSON or YAML, as kube-apiserver accepts; protobuf and CBOR are not served here. */
export function parseObjectBody(req: IncomingMessage, text: string): unknown {
  const type = mediaType(req.headers['content-type']);
  if (type === '' || type === 'application/json') return parseJson(text);
  if (type === 'application/yaml') {
    try {
      return parseYaml(text);
    } catch (error) {
      throw errors.badRequest(`error decoding YAML: ${(error as Error).message}`);
    }
  }
  throw errors.unsupportedMediaType(type, ['application/json', 'application/yaml']);
}

export function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`);
  }
}

export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

export function boolParam(params: URLSearchParams, name: string): boolean | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  return v === 'true' || v === '1';
}

export function optional(params: URLSearchParams, name: string): string | undefined {
  return params.get(name) ?? undefined;
}
