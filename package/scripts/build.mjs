#!/usr/bin/env node
// Builds the kube-conveyor package (npm pack runs it as `prepack`): JavaScript with esbuild, declarations with tsc.
//
// Node does not strip types under node_modules, so the package ships JavaScript: one ESM file per entry
// point, the @conveyor/* workspaces and the CLI bundled in, third-party dependencies left as imports of the
// package's own dependencies. Code splitting keeps one copy of every module across entry points, so a
// TerminalError from `kube-conveyor` is the class `kube-conveyor/testing` checks against.
// Declarations: TypeScript 7's tsc emits a .d.ts per source file (tsconfig.build.json); the specifiers it
// leaves (`./x.ts`, `@conveyor/shared`) do not resolve inside an installed package, so they are rewritten
// to relative `.js` paths below. A .d.ts rollup tool (api-extractor, rollup-plugin-dts) would do that
// too, but each brings its own TypeScript 5 and cannot read these sources' `.ts` imports of workspaces.
import { spawnSync } from 'node:child_process';
import { globSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const repo = resolve(pkgDir, '..');
const dist = join(pkgDir, 'dist');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const require = createRequire(import.meta.url);

rmSync(dist, { recursive: true, force: true });

const dependencies = new Set(Object.keys(pkg.dependencies));
/** Third-party imports stay imports, of declared dependencies only: an undeclared one would install nowhere for a user. */
const declaredDependenciesOnly = {
  name: 'declared-dependencies-only',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || builtinModules.includes(args.path)) return { external: true };
      if (args.path.startsWith('@conveyor/')) return undefined;
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      if (dependencies.has(name)) return { external: true };
      return { errors: [{ text: `${args.importer} imports ${args.path}, which kube-conveyor's package.json does not declare` }] };
    });
    // Product code only: the examples and the test suite's harnesses and fakes never ship (test/src is the simulator's product code).
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const path = relative(repo, args.path).split('\\').join('/');
      if (path.startsWith('examples/') || (path.startsWith('test/') && !path.startsWith('test/src/'))) {
        return { errors: [{ text: `${path} is test or example code, which the package must not ship` }] };
      }
      return undefined;
    });
  },
};
await build({
  entryPoints: ['index', 'lambda', 'testing', 'cli', 'runtime'].map((name) => ({ in: join(pkgDir, 'src', `${name}.ts`), out: name })),
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  plugins: [declaredDependenciesOnly],
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// typescript's exports hide bin/tsc; its package.json is exported, and bin/tsc sits beside it.
const tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const emitted = spawnSync(process.execPath, [tsc, '-p', join(pkgDir, 'tsconfig.build.json')], { cwd: pkgDir, encoding: 'utf8' });
if (emitted.status !== 0) {
  process.stderr.write(`${emitted.stdout}${emitted.stderr}`);
  process.exit(1);
}

const types = join(dist, 'types');
/** Where a workspace specifier's declarations are: `@conveyor/shared` → shared/src/index.d.ts, `@conveyor/test/x` → test/src/x.d.ts. */
function workspaceTarget(specifier) {
  const match = /^@conveyor\/([a-z]+)(?:\/(.+))?$/.exec(specifier);
  if (match === null) return undefined;
  return join(types, match[1], 'src', `${match[2] ?? 'index'}.js`);
}

for (const file of globSync('**/*.d.ts', { cwd: types })) {
  const path = join(types, file);
  const text = readFileSync(path, 'utf8');
  const rewritten = text.replace(/((?:from|import)\s*\(?\s*)(['"])([^'"]+)\2/g, (_whole, lead, quote, specifier) => {
    const target = workspaceTarget(specifier);
    let next = specifier;
    if (target !== undefined) {
      next = relative(dirname(path), target).split('\\').join('/');
      if (!next.startsWith('.')) next = `./${next}`;
    } else if (specifier.startsWith('.') && specifier.endsWith('.ts')) {
      next = `${specifier.slice(0, -'.ts'.length)}.js`;
    }
    return `${lead}${quote}${next}${quote}`;
  });
  writeFileSync(path, rewritten);
}

process.stdout.write(`kube-conveyor: built ${relative(repo, dist)} (JavaScript and declarations)\n`);
