// Error classes shared by every part of Conveyor: matched with instanceof in-process and by `code` across processes.

/** Stable error codes; they travel in job payloads and Lambda responses, so never rename one. */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'INVALID_ARGUMENT'
  | 'INVALID_KEY'
  | 'PAYLOAD_INVALID'
  | 'TERMINAL'
  | 'RETRYABLE'
  | 'THROTTLED'
  | 'TIMEOUT'
  | 'CONFLICT'
  | 'UNSUPPORTED'
  | 'UNAVAILABLE'
  | 'BLOCKED';

/** Codes of the errors no retry can fix: each is raised with `retryable: false`, and a request failing with one is parked at once. */
export const TERMINAL_ERROR_CODES: readonly ErrorCode[] = [
  'CONFIG_INVALID',
  'INVALID_ARGUMENT',
  'INVALID_KEY',
  'PAYLOAD_INVALID',
  'TERMINAL',
  'UNSUPPORTED',
];

export class ConveyorError extends Error {
  readonly code: ErrorCode;
  /** Whether trying the same thing again later may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, retryable: boolean, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
  }
}

export interface ConfigProblem {
  /** Dotted path inside the configuration, such as `queue.backoff.base`; empty for the whole document. */
  path: string;
  message: string;
  /** Where the value came from: the file's path or the environment variable's name. */
  source?: string;
}

/** Bad configuration: every problem found, so the user fixes them all in one go. */
export class ConfigError extends ConveyorError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map(formatConfigProblem);
    super(
      'CONFIG_INVALID',
      false,
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    );
    this.problems = problems;
  }
}

export function formatConfigProblem(problem: ConfigProblem): string {
  const where = problem.path === '' ? '(root)' : problem.path;
  return `  ${where}: ${problem.message}${problem.source ? ` [from ${problem.source}]` : ''}`;
}

/** A CLI argument, API body field or other input that cannot be used as given. */
export class InvalidArgumentError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', false, message, options);
  }
}

/** Which part of an object key was refused; `key` for a key string or job id that does not parse. */
export type KeyPart = 'group' | 'version' | 'plural' | 'namespace' | 'name' | 'key';

/** A string that is not an object key, or an object key with an invalid part. */
export class InvalidKeyError extends ConveyorError {
  readonly part: KeyPart;

  constructor(message: string, part: KeyPart = 'key') {
    super('INVALID_KEY', false, message);
    this.part = part;
  }
}

/** A queue payload that does not match the protocol version this code speaks. */
export class PayloadError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PAYLOAD_INVALID', false, message, options);
  }
}

/** Thrown by a reconcile to say: retrying will not help; count it and park the request. */
export class TerminalError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TERMINAL', false, message, options);
  }
}

/** A failure worth retrying with backoff (API 5xx, connection reset, conflict). */
export class RetryableError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RETRYABLE', true, message, options);
  }
}

/** The API server (or Lambda) asked us to slow down; the whole queue waits `retryAfterMs`. */
export class ThrottledError extends ConveyorError {
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super('THROTTLED', true, message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** An operation that did not finish within its deadline. */
export class TimeoutError extends ConveyorError {
  readonly timeoutMs: number;

  constructor(message: string, timeoutMs: number) {
    super('TIMEOUT', true, message);
    this.timeoutMs = timeoutMs;
  }
}

/** A write refused because the object changed since it was read (HTTP 409). Retrying re-reads. */
export class ConflictError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFLICT', true, message, options);
  }
}

/**
 * A failure that no retry of any request can get past until someone fixes the setup: missing or
 * rejected credentials, a function that does not exist, access denied. The whole queue pauses
 * (`queue.blockedPause`) and tries again, instead of each request spending its attempts on it.
 */
export class BlockedError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BLOCKED', true, message, options);
  }
}

/** A dependency (Redis, the API server, AWS) did not answer in time; the message names it and the last error. */
export class UnavailableError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', true, message, options);
  }
}

/** Something was asked of Conveyor that this build cannot do. */
export class UnsupportedError extends ConveyorError {
  constructor(message: string) {
    super('UNSUPPORTED', false, message);
  }
}

/** The error's message, for any thrown value, including non-Error throws. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
