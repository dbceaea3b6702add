// Runs the real `bin/conveyor.mjs` as a child process for tests about what a user of the command sees: output lines, exit codes, signals.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait-for.ts';

export const CONVEYOR_BIN = fileURLToPath(new URL('../../bin/conveyor.mjs', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When the process exited (ms since the epoch). */
  at: number;
}

export interface ConveyorProcess {
  child: ChildProcess;
  /** Standard output and standard error so far, interleaved as they arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** Resolves with the first match of `pattern` in the output; rejects (naming the output) after `timeoutMs` or if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Sends `signal` and resolves with the exit and how long after the signal it came. */
  stop(signal?: NodeJS.Signals): Promise<Exit & { afterMs: number }>;
  /** SIGKILL if still running (test cleanup). */
  kill(): void;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Its own process group, so a test can signal the whole group as a terminal's Ctrl-C does. */
  detached?: boolean;
}

/** Starts `conveyor <args>` with stdout and stderr piped (not a terminal) and only PATH (plus `env`) in its environment. */
export function spawnConveyor(args: string[], options: SpawnOptions = {}): ConveyorProcess {
  const child = spawn(process.execPath, [CONVEYOR_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    detached: options.detached === true,
  });
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stderr += chunk.toString();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    child,
    output: () => output,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async waitForOutput(pattern, timeoutMs = 60_000) {
      let match: RegExpExecArray | null = null;
      await waitFor(
        `${pattern} in the output of conveyor ${args[0]} (so far: ${output.slice(-1_500)})`,
        () => {
          match = pattern.exec(output);
          if (match === null && done) throw new Error(`conveyor ${args[0]} exited before printing ${pattern}:\n${output.slice(-3_000)}`);
          return match !== null;
        },
        timeoutMs,
        20,
      );
      return match as unknown as RegExpExecArray;
    },
    async stop(signal = 'SIGTERM') {
      const sent = Date.now();
      child.kill(signal);
      const exit = await exited;
      return { ...exit, afterMs: exit.at - sent };
    },
    kill() {
      if (!done) child.kill('SIGKILL');
    },
  };
}

/** Every output line that is not a JSON object (a raw stack trace, a banner), for "logs are JSON only" checks. */
export function nonJsonLines(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return parsed === null || typeof parsed !== 'object';
      } catch {
        return true;
      }
    });
}
