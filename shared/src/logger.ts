// The pino logger factory: JSON lines, one child per component, secrets redacted before they are written.
//
// Log keys have one meaning each across the codebase, and child loggers never bind a key their parent
// bound: `role` is the process (watcher, worker, dispatcher, lambda), `component` a part of it
// (leader-election, reconcile-api, autoscaler, watch), `controller` the controller's name, `resource` a
// watched resource by name (`widgets.example.com`), `path` an API path, `key` an object key as
// `formatKey` writes it, `jobId` a queue job, `outcome` an Outcome value, `err` an error's message.
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Paths pino blanks out wherever they appear in a log record. */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'bearerToken',
  '*.bearerToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'kube.token',
  'config.kube.token',
];

export interface LoggerOptions {
  /** @defaultValue info */
  level?: string;
  /** The process's role, such as `watcher` or `worker`: the `role` of every line. */
  name?: string;
  /** Where lines go. @defaultValue standard output */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: options.name === undefined ? {} : { role: options.name },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}
