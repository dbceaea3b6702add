// Kubernetes Events about the object being reconciled (`ctx.events`): events.k8s.io/v1 Events, counted in series and rate-limited per object as client-go's recorder does, never failing the run.
//
// # Expected flow
// `ctx.events.warning(reason, note)` returns at once; the write runs beside the reconcile and the run waits
// for it before it reports its outcome (a Lambda is frozen once it returns). The occurrence is counted in
// its series in Redis (event-series.ts): the first creates the Event; a repeat — the same object (uid),
// type, reason, action and note, within 6 minutes of the last — patches `series.count` and
// `series.lastObservedTime` of that Event instead of making a new one, as `kubectl describe` then shows
// ("x10 over 2m"). Every write is paid from the API budget through the run's client.
//
// # Guarantees
// A failure to write an Event (Redis or the API server away, RBAC, the budget's wait cut off by the run's
// timeout) is logged at warn and never fails or delays the reconcile beyond the write itself. An
// occurrence the spam filter holds back (25 at once per object, then one per 5 minutes) is still counted:
// the next write of its series carries the count.
import { hostname } from 'node:os';
import {
  type Config,
  type EventOptions,
  type EventSeriesStore,
  errorMessage,
  fieldManagerOf,
  isNotFound,
  KubeApiError,
  type KubeClient,
  type KubeObject,
  type Logger,
  type ObjectEvents,
  type RedisConnection,
  RedisEventSeries,
  type StoredObject,
} from '@conveyor/shared';

const EVENTS = { group: 'events.k8s.io', version: 'v1', plural: 'events' };
/** kube-apiserver refuses a longer note (1 KiB), a longer reason or action (128 bytes); longer ones are cut. */
const NOTE_LIMIT = 1024;
const FIELD_LIMIT = 128;

type EventType = 'Normal' | 'Warning';

/** An events.k8s.io/v1 Event as the recorder writes it. */
interface EventBody extends KubeObject {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  type: EventType;
  note: string;
  regarding: { apiVersion: string; kind: string; name: string; namespace?: string; uid: string; resourceVersion: string };
  series?: { count: number; lastObservedTime: string };
}

export interface EventRecorderOptions {
  series: EventSeriesStore;
  /** The controller's name: Events report `conveyor-<name>` as their controller. */
  controller: string;
  /** @defaultValue the host name */
  instance?: string;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** The recorder of a worker or Lambda process: series and spam filters in the controller's Redis slot. */
export function eventRecorderFor(connection: RedisConnection, config: Pick<Config, 'redis'>, controller: string): EventRecorder {
  return new EventRecorder({ series: new RedisEventSeries(connection, { prefix: config.redis.prefix, controller }), controller });
}

/** The Events of one process: a recorder per run, all counting in the same Redis series. */
export class EventRecorder {
  private readonly o: EventRecorderOptions;
  private readonly instance: string;

  constructor(options: EventRecorderOptions) {
    this.o = options;
    this.instance = `${fieldManagerOf(options.controller)}-${options.instance ?? hostname()}`.slice(0, FIELD_LIMIT);
  }

  /** Events about `object` recorded by one run, written with `client` (the run's, so paid from the budget). */
  forRun(object: StoredObject, client: KubeClient, log: Logger, defaultAction: string): RunEvents {
    return new RunEvents(this, object, client, log, defaultAction);
  }

  /** Counts one occurrence and writes it when the spam filter allows; never throws. */
  async record(object: StoredObject, client: KubeClient, log: Logger, type: EventType, reason: string, note: string, action: string) {
    const now = (this.o.now ?? Date.now)();
    const { metadata } = object;
    const namespace = metadata.namespace === undefined || metadata.namespace === '' ? 'default' : metadata.namespace;
    const trimmed = {
      reason: withinBytes(reason, FIELD_LIMIT),
      action: withinBytes(action, FIELD_LIMIT),
      note: withinBytes(note, NOTE_LIMIT),
    };
    try {
      const uid = metadata.uid ?? `${namespace}/${metadata.name}`;
      const noted = await this.o.series.note({ uid, type, ...trimmed }, eventName(metadata.name, now));
      if (!noted.write) {
        log.debug({ reason, count: noted.count }, 'Event held back by the spam filter; its series keeps the count');
        return;
      }
      const body: EventBody = {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: noted.name, namespace },
        eventTime: microTime(now),
        reportingController: fieldManagerOf(this.o.controller),
        reportingInstance: this.instance,
        ...trimmed,
        type,
        regarding: {
          apiVersion: object.apiVersion ?? '',
          kind: object.kind ?? '',
          name: metadata.name,
          ...(metadata.namespace === undefined || metadata.namespace === '' ? {} : { namespace: metadata.namespace }),
          uid: metadata.uid ?? '',
          resourceVersion: metadata.resourceVersion,
        },
      };
      const series = { count: noted.count, lastObservedTime: microTime(now) };
      await writeEvent(client, body, noted.count === 1 ? undefined : series);
    } catch (error) {
      log.warn({ reason, type, err: errorMessage(error) }, 'Event not recorded; the reconcile goes on');
    }
  }
}

/** The Events of one run, written in order; `flush` waits for their writes (which never reject). */
export class RunEvents implements ObjectEvents {
  /** The run's writes, one after another: a later count of a series never lands before an earlier one. */
  private written: Promise<void> = Promise.resolve();
  private readonly recorder: EventRecorder;
  private readonly object: StoredObject;
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly defaultAction: string;

  constructor(recorder: EventRecorder, object: StoredObject, client: KubeClient, log: Logger, defaultAction: string) {
    this.recorder = recorder;
    this.object = object;
    this.client = client;
    this.log = log;
    this.defaultAction = defaultAction;
  }

  normal(reason: string, note: string, options?: EventOptions): void {
    this.add('Normal', reason, note, options);
  }

  warning(reason: string, note: string, options?: EventOptions): void {
    this.add('Warning', reason, note, options);
  }

  async flush(): Promise<void> {
    await this.written;
  }

  private add(type: EventType, reason: string, note: string, options: EventOptions | undefined): void {
    const action = options?.action ?? this.defaultAction;
    this.written = this.written.then(() => this.recorder.record(this.object, this.client, this.log, type, reason, note, action));
  }
}

/**
 * Creates the Event, or with a series patches its count. A patch that finds no Event (the first write was held
 * back, or the Event expired on the server) creates it with its series; a create that finds it made already by
 * another worker's first occurrence leaves it.
 */
async function writeEvent(client: KubeClient, body: EventBody, series: EventBody['series']): Promise<void> {
  const key = { ...EVENTS, namespace: body.metadata.namespace, name: body.metadata.name };
  if (series !== undefined) {
    try {
      await client.patch(key, { type: 'merge', body: { series } });
      return;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  try {
    await client.create(EVENTS, series === undefined ? body : { ...body, series });
  } catch (error) {
    if (error instanceof KubeApiError && error.statusCode === 409) return;
    throw error;
  }
}

/** client-go's Event name: the object's name and the time in hex nanoseconds, kept within a DNS subdomain's 253 characters. */
function eventName(objectName: string, now: number): string {
  const suffix = (BigInt(Math.floor(now)) * 1_000_000n).toString(16);
  return `${objectName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

/** The longest start of `text` within `limit` UTF-8 bytes (kube-apiserver counts a Go string's bytes), never splitting a character. */
function withinBytes(text: string, limit: number): string {
  if (Buffer.byteLength(text) <= limit) return text;
  let out = '';
  let bytes = 0;
  for (const char of text) {
    bytes += Buffer.byteLength(char);
    if (bytes > limit) break;
    out += char;
  }
  return out;
}

/** metav1.MicroTime: RFC 3339 with six fractional digits, which kube-apiserver requires of eventTime. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
