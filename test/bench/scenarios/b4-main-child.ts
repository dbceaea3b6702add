// B4's own process (see latencyUnderResync): runs the measurement at the size in argv, prints progress on stderr and the result as one JSON line on stdout.
import type { SizeName } from '../bench-support.ts';
import { measureLatencyUnderResync } from './b4-latency-under-resync.ts';

const size = process.argv[2] as SizeName;
const result = await measureLatencyUnderResync({ size, log: (line) => process.stderr.write(`${line}\n`), lambda: false });
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
