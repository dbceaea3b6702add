// Runs the selected benchmark scenarios several times, each run on its own private Redis (and simulator), and folds each scenario's runs into medians.
import { type AggregatedResult, aggregateRuns } from './aggregate-runs.ts';
import { SCENARIO_IDS, type Scenario, type ScenarioContext, type ScenarioId, type ScenarioResult } from './bench-support.ts';
import { watcherMemory } from './scenarios/b1-memory.ts';
import { ingest } from './scenarios/b2-ingest.ts';
import { burstDrain } from './scenarios/b3-burst-drain.ts';
import { latencyUnderResync } from './scenarios/b4-latency-under-resync.ts';
import { churn } from './scenarios/b5-churn.ts';
import { apiLoad } from './scenarios/b6-api-load.ts';
import { thunderingHerd } from './scenarios/b7-thundering-herd.ts';
import { costPerChange } from './scenarios/b8-cost-per-change.ts';
import { bigController } from './scenarios/b9-big-controller.ts';
import { pastOneNode } from './scenarios/b10-past-one-node.ts';

export const SCENARIOS: Partial<Record<ScenarioId, Scenario>> = {
  B1: watcherMemory,
  B2: ingest,
  B3: burstDrain,
  B4: latencyUnderResync,
  B5: churn,
  B6: apiLoad,
  B7: thunderingHerd,
  B8: costPerChange,
  B9: bigController,
  B10: pastOneNode,
};

export interface BenchRun {
  results: AggregatedResult[];
  /** Scenarios selected but not available in this version. */
  missing: ScenarioId[];
  elapsedMs: number;
}

export interface BenchOptions {
  /** How many times each scenario runs (at least 1). */
  runs: number;
  /** Judge the goals; false at a size too small for them to mean anything. */
  judge: boolean;
}

/**
 * Runs `only` (every scenario when empty) `runs` times and aggregates each scenario's runs. The runs are taken
 * in turn — B1…B8, then B1…B8 again — rather than B1 three times and then B2: a minute in which another process
 * loads the machine then spoils one run of several scenarios, which their medians ignore, instead of every run
 * of one. A scenario that throws fails the whole run.
 */
export async function runBench(only: readonly ScenarioId[], context: ScenarioContext, options: BenchOptions): Promise<BenchRun> {
  if (!Number.isInteger(options.runs) || options.runs < 1)
    throw new Error(`runBench: runs must be a positive integer, got ${options.runs}`);
  const started = Date.now();
  const selected = only.length === 0 ? SCENARIO_IDS : SCENARIO_IDS.filter((id) => only.includes(id));
  const missing = selected.filter((id) => SCENARIOS[id] === undefined);
  const available = selected.filter((id) => SCENARIOS[id] !== undefined);
  const byScenario = new Map<ScenarioId, ScenarioResult[]>(available.map((id) => [id, []]));
  for (let run = 1; run <= options.runs; run++) {
    const prefix = options.runs === 1 ? '' : `run ${run}/${options.runs}: `;
    const log = (line: string) => context.log(`${prefix}${line}`);
    for (const id of available) {
      const scenario = SCENARIOS[id] as Scenario;
      const t = Date.now();
      byScenario.get(id)?.push(await scenario({ ...context, log }));
      log(`${id} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
  }
  const results = available.map((id) => aggregateRuns(byScenario.get(id) ?? [], options.judge));
  return { results, missing, elapsedMs: Date.now() - started };
}
