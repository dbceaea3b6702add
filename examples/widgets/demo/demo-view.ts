// How the demo shows its figures: a live block redrawn in place on a terminal, or one plain line per interval otherwise.
import type { DemoSnapshot } from './demo-stats.ts';

export interface DemoView {
  show(snapshot: DemoSnapshot): void;
  /** Prints a line of its own (a phase starting), above the live block on a terminal. */
  note(line: string): void;
  /** Leaves the last live block on screen. */
  end(): void;
}

const ms = (v: number | undefined) => (v === undefined ? '-' : v < 1_000 ? `${Math.round(v)}ms` : `${(v / 1_000).toFixed(1)}s`);

export function formatDropped(dropped: Record<string, number>): string {
  const entries = Object.entries(dropped).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([why, n]) => `${n} ${why}`).join(', ');
}

/** One line for logs and pipes. */
export function plainLine(s: DemoSnapshot): string {
  return [
    `[${s.elapsedS.toFixed(1).padStart(5)}s] ${s.phase}:`,
    `backlog ${s.backlog} (active ${s.depth.active}, delayed ${s.depth.delayedLater}, parked ${s.depth.parked})`,
    `reconciles ${s.reconciles} (${s.reconcilesPerSecond.toFixed(0)}/s, errors ${s.errors})`,
    `latency p50 ${ms(s.latencyP50Ms)} p99 ${ms(s.latencyP99Ms)}`,
    `dropped ${formatDropped(s.dropped)}`,
    `${s.workerLabel} ${s.runningWorkers} running / ${s.desiredWorkers} desired`,
  ].join(' | ');
}

function bar(value: number, max: number, width = 30): string {
  const filled = max <= 0 ? 0 : Math.min(width, Math.round((value / max) * width));
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

function liveBlock(s: DemoSnapshot, peakBacklog: number): string[] {
  return [
    `  phase      ${s.phase}  (${s.elapsedS.toFixed(1)}s)`,
    `  backlog    ${bar(s.backlog, peakBacklog)} ${s.backlog}  active ${s.depth.active}  delayed ${s.depth.delayedLater}  parked ${s.depth.parked}`,
    `  reconciles ${s.reconciles} total  ${s.reconcilesPerSecond.toFixed(0)}/s  errors ${s.errors}`,
    `  latency    event→reconcile p50 ${ms(s.latencyP50Ms)}  p99 ${ms(s.latencyP99Ms)}  (${s.latencySamples} writes)`,
    `  watcher    ${s.eventsSeen} events, ${s.listed} listed, ${s.enqueued} enqueued, ${s.merged} merged`,
    `  dropped    ${formatDropped(s.dropped)}`,
    `  workers    ${s.workerLabel}: ${s.runningWorkers} running / ${s.desiredWorkers} desired`,
  ];
}

/**
 * A view writing to `out`, each call one chunk ending in a newline: live on a terminal (the block is
 * erased and redrawn in place), plain lines otherwise (at most one per `plainEveryMs`).
 */
export function createDemoView(out: (chunk: string) => void, tty: boolean, plainEveryMs = 2_000): DemoView {
  if (!tty) {
    let lastAt = 0;
    return {
      show(s) {
        const now = Date.now();
        if (now - lastAt < plainEveryMs) return;
        lastAt = now;
        out(`${plainLine(s)}\n`);
      },
      note(line) {
        out(`${line}\n`);
      },
      end() {},
    };
  }
  let drawn = 0;
  let peak = 1;
  let last: DemoSnapshot | undefined;
  const erase = () => (drawn > 0 ? `\x1b[${drawn}A\x1b[0J` : '');
  const block = () => {
    if (last === undefined) {
      drawn = 0;
      return '';
    }
    const lines = liveBlock(last, peak);
    drawn = lines.length;
    return `${lines.join('\n')}\n`;
  };
  return {
    show(s) {
      peak = Math.max(peak, s.backlog);
      last = s;
      const before = erase();
      out(before + block());
    },
    note(line) {
      const before = erase();
      out(`${before}${line}\n${block()}`);
    },
    end() {
      drawn = 0;
      last = undefined;
    },
  };
}
