// Runs the selected benchmark scenarios one after another, each on its own private Redis (and simulator), and collects their results.
import { SCENARIO_IDS, type Scenario, type ScenarioContext, type ScenarioId, type ScenarioResult } from './bench-support.ts';
import { watcherMemory } from './scenarios/b1-memory.ts';
import { ingest } from './scenarios/b2-ingest.ts';
import { burstDrain } from './scenarios/b3-burst-drain.ts';
import { latencyUnderResync } from './scenarios/b4-latency-under-resync.ts';
import { churn } from './scenarios/b5-churn.ts';
import { apiLoad } from './scenarios/b6-api-load.ts';
import { thunderingHerd } from './scenarios/b7-thundering-herd.ts';

export const SCENARIOS: Partial<Record<ScenarioId, Scenario>> = {
  B1: watcherMemory,
  B2: ingest,
  B3: burstDrain,
  B4: latencyUnderResync,
  B5: churn,
  B6: apiLoad,
  B7: thunderingHerd,
};

export interface BenchRun {
  results: ScenarioResult[];
  /** Scenarios selected but not available in this version. */
  missing: ScenarioId[];
  elapsedMs: number;
}

/** Runs `only` (every scenario when empty) in order B1…B7. A scenario that throws fails the run. */
export async function runBench(only: readonly ScenarioId[], context: ScenarioContext): Promise<BenchRun> {
  const started = Date.now();
  const selected = only.length === 0 ? SCENARIO_IDS : SCENARIO_IDS.filter((id) => only.includes(id));
  const results: ScenarioResult[] = [];
  const missing: ScenarioId[] = [];
  for (const id of selected) {
    const scenario = SCENARIOS[id];
    if (scenario === undefined) {
      missing.push(id);
      continue;
    }
    const t = Date.now();
    results.push(await scenario(context));
    context.log(`${id} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  return { results, missing, elapsedMs: Date.now() - started };
}
