// `conveyor sim`: runs the Kubernetes API simulator until SIGTERM/SIGINT (or until the npx that launched it exits), printing its URL and writing a kubeconfig for it.
import { errorMessage, InvalidArgumentError, parseDuration } from '@conveyor/shared';
import { type Command, type Flags, type Io, parseFlags, UsageError } from './command.ts';
import { runUntilStopped, type Say } from './controller-process.ts';

/** How long the simulator may take to close its connections after a stop. */
const SIM_GRACE_MS = 5_000;

function port(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || n > 65535) throw new UsageError(`--port must be a port number from 0 to 65535, got "${raw}"`);
  return n;
}

function duration(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  try {
    return parseDuration(raw);
  } catch (error) {
    throw new InvalidArgumentError(`--${flag}: ${(error as Error).message}`);
  }
}

const FLAGS = {
  port: { type: 'string', short: 'p', value: '<port>', description: 'port to serve on', defaultText: '0: a free port' },
  host: { type: 'string', value: '<address>', description: 'address to serve on', defaultText: '127.0.0.1' },
  tls: { type: 'boolean', description: 'serve HTTPS with a throwaway self-signed certificate (kubectl sends tokens only over TLS)' },
  'kubeconfig-out': {
    type: 'string',
    short: 'o',
    value: '<file>',
    description: 'write a kubeconfig (mode 0600) with the bearer token there',
    defaultText: 'none',
  },
  token: { type: 'string', multiple: true, value: '<token>', description: 'a bearer token to accept', defaultText: 'one random token' },
  'bookmark-interval': { type: 'string', value: '<duration>', description: 'how often watches get a BOOKMARK', defaultText: '60s' },
  'history-window': {
    type: 'string',
    value: '<duration>',
    description: 'how long watch events stay replayable (older resourceVersions get 410 Gone)',
    defaultText: '75s',
  },
  'continue-ttl': { type: 'string', value: '<duration>', description: 'how long a list’s continue token stays valid', defaultText: '5m' },
} as const satisfies Flags;

export function simCommand(): Command {
  return {
    name: 'sim',
    summary: 'run the Kubernetes API simulator',
    usage:
      'conveyor sim [--port <port>] [--host <address>] [--tls] [--kubeconfig-out <file>] [--token <token>]... [--bookmark-interval <duration>] [--history-window <duration>] [--continue-ttl <duration>]',
    flags: FLAGS,
    async run(args, io) {
      const { values } = parseFlags(args, FLAGS);
      const bookmarkIntervalMs = duration('bookmark-interval', values['bookmark-interval']);
      const historyWindowMs = duration('history-window', values['history-window']);
      const continueTokenTtlMs = duration('continue-ttl', values['continue-ttl']);
      // Loaded only now: other commands never load the simulator.
      const { startKubeSimulator } = await import('@conveyor/test');
      const kubeconfig = values['kubeconfig-out'];
      return await runUntilStopped({
        graceMs: SIM_GRACE_MS,
        say: simSay(io),
        stopping: 'stopping',
        start: async () => {
          const sim = await startKubeSimulator({
            port: port(values.port),
            ...(values.host === undefined ? {} : { host: values.host }),
            tls: values.tls === true,
            ...(values.token === undefined || values.token.length === 0 ? {} : { tokens: values.token }),
            ...(bookmarkIntervalMs === undefined ? {} : { bookmarkIntervalMs }),
            ...(historyWindowMs === undefined ? {} : { historyWindowMs }),
            ...(continueTokenTtlMs === undefined ? {} : { continueTokenTtlMs }),
          });
          if (kubeconfig !== undefined) {
            try {
              sim.writeKubeconfig(kubeconfig);
            } catch (error) {
              // Without its kubeconfig nobody can use this simulator (the token is in it): stop, do not serve on.
              await sim.close();
              throw new UsageError(`--kubeconfig-out: cannot write ${kubeconfig}: ${errorMessage(error)}`);
            }
          }
          return sim;
        },
        started: (sim) => {
          // The token goes only into the kubeconfig file (mode 0600), never to the output.
          io.out(`conveyor sim: serving the Kubernetes API on ${sim.url}`);
          if (kubeconfig !== undefined) io.out(`conveyor sim: kubeconfig with a bearer token written to ${kubeconfig}`);
          else
            io.err('conveyor sim: no --kubeconfig-out given; clients cannot learn the generated token (pass --token or --kubeconfig-out)');
          if (values.tls !== true) io.err('conveyor sim: plain HTTP; kubectl sends bearer tokens only over TLS, so use --tls for kubectl');
        },
      });
    },
  };
}

/** The simulator is a tool for people: plain lines, not JSON. */
function simSay(io: Io): Say {
  return (level, message) => (level === 'info' ? io.out : io.err)(`conveyor sim: ${message}`);
}
