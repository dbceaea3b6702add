// The docs' TypeScript samples are real code: each ```ts block must be a verbatim region of a file in docs/examples/, which `npm run typecheck` compiles.
import assert from 'node:assert/strict';
import { existsSync, globSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pages = globSync('docs/**/*.md', { cwd: root }).sort();
const samples = globSync('docs/examples/**/*.ts', { cwd: root }).map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));

function codeBlocks(markdown: string): { lang: string; code: string; line: number }[] {
  const blocks: { lang: string; code: string; line: number }[] = [];
  const fence = /^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let match = fence.exec(markdown); match !== null; match = fence.exec(markdown)) {
    blocks.push({ lang: match[1] ?? '', code: match[2] ?? '', line: markdown.slice(0, match.index).split('\n').length });
  }
  return blocks;
}

describe('Docs: code samples and links', () => {
  it('compiles docs/examples with the rest of the project (tsconfig includes it)', () => {
    const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { include: string[] };
    assert.ok(
      tsconfig.include.some((p) => p === 'docs/examples' || p === 'docs'),
      'tsconfig.json must include docs/examples so npm run typecheck checks the samples',
    );
    assert.ok(samples.length >= 3, `sample files: ${samples.map((s) => s.file).join(', ')}`);
  });

  it('takes every ```ts block in the docs verbatim from a typechecked sample file', () => {
    let checked = 0;
    const strays: string[] = [];
    for (const page of pages) {
      const markdown = readFileSync(join(root, page), 'utf8');
      for (const block of codeBlocks(markdown)) {
        if (!['ts', 'typescript', 'js', 'javascript'].includes(block.lang)) continue;
        checked += 1;
        if (block.lang !== 'ts' && block.lang !== 'typescript')
          strays.push(`${page}:${block.line}: a ${block.lang} block; write samples in TypeScript`);
        else if (!samples.some((s) => s.text.includes(block.code.trimEnd()))) {
          strays.push(`${page}:${block.line}: not found in docs/examples/*.ts: ${block.code.split('\n')[0]}`);
        }
      }
    }
    assert.deepEqual(strays, []);
    assert.ok(checked >= 6, `only ${checked} TypeScript samples found in ${pages.join(', ')}`);
  });

  it('links only to files that exist', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const markdown = readFileSync(join(root, page), 'utf8');
      for (const match of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = (match[1] ?? '').split('#')[0] ?? '';
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(root, dirname(page), target))) broken.push(`${page}: ${match[1]}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
