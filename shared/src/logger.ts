// The pino logger factory: JSON lines, one child per component, secrets redacted before they are written.
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
  /** Component name, such as `watcher` or `worker`. */
  name?: string;
  /** Where lines go. @defaultValue standard output */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: options.name === undefined ? {} : { component: options.name },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}
