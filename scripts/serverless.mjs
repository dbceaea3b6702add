#!/usr/bin/env node
// Runs osls (the Serverless Framework v3 fork) offline-safe: telemetry and notifications off, dummy AWS
// credentials when none are set (packaging and local emulation need none), warnings for unhandled rejections.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const cli = require.resolve('osls/bin/serverless.js');
const env = {
  ...process.env,
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  SLS_DEPRECATION_DISABLE: '*',
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'conveyor-local',
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'conveyor-local',
  // An Event invoke that throws would otherwise take the emulator down (DESIGN §9).
  NODE_OPTIONS: [process.env.NODE_OPTIONS, '--unhandled-rejections=warn'].filter(Boolean).join(' '),
};
const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
