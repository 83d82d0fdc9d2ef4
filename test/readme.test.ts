// Keeps the README's example true: the code shown is examples/quickstart.ts, and running it prints what
// the README says (losses may differ in the last printed digit between SIMD builds: ±0.02).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const example = readme.split('## A short example')[1] ?? '';
const code = /```ts\n([\s\S]*?)```/.exec(example)?.[1] ?? '';
const printed = /It prints:\n\n```text\n([\s\S]*?)```/.exec(example)?.[1] ?? '';

describe('README example', () => {
  it('shows the code of examples/quickstart.ts', () => {
    expect(code.length).toBeGreaterThan(0);
    expect(code).toBe(readFileSync(join(root, 'examples/quickstart.ts'), 'utf8'));
  });

  it('prints what the README says it prints', () => {
    const tsx = join(root, 'node_modules/.bin/tsx');
    const out = execFileSync(tsx, [join(root, 'examples/quickstart.ts')], { cwd: root, encoding: 'utf8', timeout: 90_000 });
    const got = out.trimEnd().split('\n');
    const want = printed.trimEnd().split('\n');
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      const num = /loss (\d+\.\d+)$/;
      const w = num.exec(want[i]), g = num.exec(got[i]);
      if (w && g) {
        expect(got[i].replace(num, '')).toBe(want[i].replace(num, ''));
        expect(Math.abs(Number(g[1]) - Number(w[1]))).toBeLessThanOrEqual(0.02);
      } else expect(got[i]).toBe(want[i]);
    }
  });
});
