#!/usr/bin/env node
// Entry point of the `conveyor` command: checks the Node.js version, then runs the TypeScript CLI directly (Node strips types).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `conveyor needs Node.js 22.19 or newer (this is ${process.version}). Run it through npm (npx conveyor, npm run …), ` +
      'which uses the Node.js 24 that `npm ci` installs on linux-x64, or install Node.js 24 (see README, Development).\n',
  );
  process.exit(1);
}
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
