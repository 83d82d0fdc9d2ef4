// Loom's language-model run against PyTorch's reference runs, epoch by epoch (issue 6's quality check):
//   pnpm compare:lm --run=runs/wt2-13ep-STAMP                        against docs/results/wikitext2-pytorch
//   pnpm compare:lm --run=DIR --reference=FOLDER_OR_JSON --tolerance=0.02 --json=out.json
//   ... --torch-tokens-per-sec=1004                                  PyTorch's training speed on this machine,
//                                                                     measured in the same minutes as Loom's
// Prints the table; exits 0 whether or not the figures agree (it reports, it does not judge twice).
import * as fs from 'node:fs';
import { parseOptions, runMain } from './lib/cli.js';
import { ConfigError } from './lib/config.js';
import { compareRuns, comparisonTable, readLoomRun, readReferenceRuns } from './lib/lm-comparison.js';
import { formatDuration } from './lib/progress.js';

runMain(async () => {
  const o = parseOptions('compare-lm', {
    run: '', // the Loom run folder (what pnpm train printed)
    reference: 'docs/results/wikitext2-pytorch', // reference/word_lm.py --json files: a folder or one file
    tolerance: 0.02, // the agreement asked for, relative
    'torch-tokens-per-sec': 0, // PyTorch's training tokens/s on this machine, for its wall-clock (0: not shown)
    json: '', // also write the rows here
  }, process.argv.slice(2));
  if (o.run === '') throw new ConfigError('compare-lm: --run=RUN_FOLDER is required');
  const loom = readLoomRun(o.run);
  const refs = readReferenceRuns(o.reference);
  const rows = compareRuns(loom, refs);

  console.log(`Loom: ${o.run} (${loom.epochs.length} epoch${loom.epochs.length === 1 ? '' : 's'} evaluated, ${loom.tokens.toLocaleString('en-US')} training tokens, ${formatDuration(loom.seconds)})`);
  console.log(`PyTorch: ${refs.length} run${refs.length === 1 ? '' : 's'} (${[...new Set(refs.map((r) => r.device))].join(', ')}) from ${o.reference}\n`);
  console.log(comparisonTable(rows, loom));

  const last = rows.filter((r) => r.epoch !== 'test' && r.loom !== null).pop();
  const test = rows.find((r) => r.epoch === 'test')!;
  const within = (r: typeof test | undefined): string =>
    r?.relative == null ? 'not measured' : Math.abs(r.relative) <= o.tolerance ? `within ${100 * o.tolerance}%` : `outside ${100 * o.tolerance}%`;
  console.log(`\nlast validation (epoch ${last?.epoch ?? '–'}): ${within(last)}; test: ${within(test)}`);
  const torchTps = o['torch-tokens-per-sec'];
  if (torchTps > 0 && loom.tokens > 0) {
    const loomTps = loom.tokens / loom.seconds;
    console.log(`wall-clock for these ${loom.tokens.toLocaleString('en-US')} training tokens: Loom ${formatDuration(loom.seconds)} measured (${loomTps.toFixed(0)} tokens/s with its evaluations); ` +
      `PyTorch at ${torchTps} tokens/s: ${formatDuration(loom.tokens / torchTps)} for training alone`);
  }
  if (o.json) {
    fs.writeFileSync(o.json, `${JSON.stringify(rows.map((r) => ({ workload: 'wikitext2-zaremba-small', mode: r.epoch === 'test' ? 'test' : 'valid', ...r })), null, 2)}\n`);
    console.log(`wrote ${o.json}`);
  }
});
