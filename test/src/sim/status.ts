// Kubernetes `Status` bodies and the error type the simulator throws to answer a request with one.

export type JsonObject = Record<string, unknown>;

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** The reason strings kube-apiserver puts in `Status.reason` (metav1.StatusReason). */
export type StatusReason =
  /** An error that is not a Status inside kube-apiserver: the body has no reason at all. */
  | ''
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'InternalError'
  | 'Timeout'
  | 'ServiceUnavailable';

/** Thrown anywhere inside request handling; the server turns it into the Status response. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details: StatusDetails | undefined;
  readonly headers: Record<string, string>;
  /** ListMeta of the Status, as an expired continue token's inconsistent-continue offer. */
  listMeta: JsonObject = {};

  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetails, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.headers = headers;
  }

  toStatus(): JsonObject {
    return { ...statusBody(this.code, this.reason, this.message, this.details), metadata: this.listMeta };
  }
}

export function statusBody(code: number, reason: StatusReason, message: string, details?: StatusDetails): JsonObject {
  const body: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason !== '') body.reason = reason;
  if (details !== undefined) body.details = details;
  body.code = code;
  return body;
}

export function successStatus(details: StatusDetails): JsonObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}

/** `group` and `resource` as kube-apiserver names them in messages: `widgets.example.com`, `configmaps`. */
export interface GroupResource {
  group: string;
  resource: string;
}

function qualified(gr: GroupResource): string {
  return gr.group === '' ? gr.resource : `${gr.resource}.${gr.group}`;
}

export const errors = {
  notFound(gr: GroupResource, name: string): ApiError {
    return new ApiError(404, 'NotFound', `${qualified(gr)} "${name}" not found`, { name, group: gr.group, kind: gr.resource });
  },
  alreadyExists(gr: GroupResource, name: string): ApiError {
    return new ApiError(409, 'AlreadyExists', `${qualified(gr)} "${name}" already exists`, {
      name,
      group: gr.group,
      kind: gr.resource,
    });
  },
  conflict(gr: GroupResource, name: string): ApiError {
    return new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(gr)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: gr.group, kind: gr.resource },
    );
  },
  /** 422 as errors.NewInvalid builds it: `Kind.group "name" is invalid: [a, b]` (no brackets for one cause), empty details left out. */
  invalid(kind: string, group: string, name: string, causes: StatusCause[]): ApiError {
    const each = causes.map((c) => (c.field === undefined ? c.message : `${c.field}: ${c.message}`));
    const summary = each.length === 1 ? each[0] : `[${each.join(', ')}]`;
    const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
    return new ApiError(422, 'Invalid', `${qualifiedKind} "${name}" is invalid: ${summary}`, {
      ...(name === '' ? {} : { name }),
      ...(group === '' ? {} : { group }),
      ...(kind === '' ? {} : { kind }),
      causes: causes.map((c) => ({
        reason: c.reason ?? 'FieldValueInvalid',
        message: c.message,
        ...(c.field === undefined ? {} : { field: c.field }),
      })),
    });
  },
  badRequest(message: string): ApiError {
    return new ApiError(400, 'BadRequest', message);
  },
  methodNotAllowed(message = 'the server does not allow this method on the requested resource'): ApiError {
    return new ApiError(405, 'MethodNotAllowed', message);
  },
  gone(message: string): ApiError {
    return new ApiError(410, 'Gone', message);
  },
  expired(message: string): ApiError {
    return new ApiError(410, 'Expired', message);
  },
  unauthorized(): ApiError {
    return new ApiError(401, 'Unauthorized', 'Unauthorized');
  },
  forbidden(message: string, gr: GroupResource, name?: string): ApiError {
    return new ApiError(403, 'Forbidden', message, { ...(name === undefined ? {} : { name }), group: gr.group, kind: gr.resource });
  },
  tooManyRequests(retryAfterSeconds: number): ApiError {
    return new ApiError(
      429,
      'TooManyRequests',
      'The server has received too many requests and has asked us to try again later',
      { retryAfterSeconds },
      { 'Retry-After': String(retryAfterSeconds) },
    );
  },
  internal(message: string): ApiError {
    return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
  },
  notAcceptable(message: string): ApiError {
    return new ApiError(406, 'NotAcceptable', message);
  },
  unsupportedMediaType(contentType: string, accepted: string[]): ApiError {
    return new ApiError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
      { causes: [{ reason: 'UnexpectedHeader', message: `unsupported media type ${contentType}`, field: 'Content-Type' }] },
    );
  },
};
