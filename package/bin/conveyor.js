#!/usr/bin/env node
// Entry point of the kube-conveyor package's `conveyor` command: checks the Node.js version, then runs the built CLI.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`conveyor needs Node.js 22.19 or newer (this is ${process.version}); install Node.js 24.\n`);
  process.exit(1);
}
const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv.slice(2));
