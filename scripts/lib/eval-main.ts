/*
 * `pnpm eval`: the perplexity of a checkpoint on a corpus.
 *
 *   pnpm eval RUN_OR_CHECKPOINT                     the run's test split (valid when it has none)
 *   pnpm eval RUN_OR_CHECKPOINT --split=valid
 *   pnpm eval RUN_OR_CHECKPOINT --data=PATH         any text: a file, a folder or a glob, encoded with the
 *                                                   checkpoint's tokenizer (streamed into a temporary token file)
 *   options: --batchSize=N (lanes, default train.evalBatchSize) --bptt=N (default train.bptt) --json=FILE
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TokenFile, encodeCorpus } from '@loom/data';
import { parseArgs } from './cli.js';
import { ConfigError } from './config.js';
import { prepareCorpus, resolveTextFiles } from './corpus.js';
import { evaluate, type EvalResult } from './lm.js';
import { intOption, stringOption } from './options.js';
import { fmtPpl } from './progress.js';
import { loadTrained } from './trained.js';

export const EVAL_USAGE = 'usage: pnpm eval RUN_FOLDER_OR_CHECKPOINT [--data=FILE|FOLDER|GLOB] [--split=valid|test] [--batchSize=N] [--bptt=N] [--json=FILE]';

export async function evalMain(argv: readonly string[], io: { out?: (line: string) => void } = {}): Promise<EvalResult & { what: string }> {
  const out = io.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const args = parseArgs(argv, { valued: ['data', 'split', 'batchSize', 'bptt', 'json'], flags: [], overrides: false, usage: EVAL_USAGE });
  if (args.positional.length !== 1) throw new ConfigError(`eval: expected one run folder or checkpoint, got ${args.positional.length}\n${EVAL_USAGE}`);
  const t = await loadTrained(args.positional[0], 'eval');
  const batchSize = intOption('batchSize', args.options.get('batchSize'), t.config.train.evalBatchSize, 1);
  const bptt = intOption('bptt', args.options.get('bptt'), t.config.train.bptt, 1);
  const split = stringOption('split', args.options.get('split'), '');
  if (split !== '' && split !== 'valid' && split !== 'test') throw new ConfigError(`--split must be 'valid' or 'test', got '${split}'`);
  const data = args.options.get('data');
  let file: string;
  let what: string;
  let cleanup = () => {};
  if (typeof data === 'string') {
    if (split !== '') throw new ConfigError('eval: give --data or --split, not both');
    const files = resolveTextFiles('--data', data, '', '');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-eval-'));
    cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
    file = path.join(dir, 'eval.tok');
    encodeCorpus(files, file, t.tokenizer);
    what = files.length === 1 ? files[0] : `${files.length} files under ${data}`;
  } else {
    const corpus = prepareCorpus(t.config.data, { log: out, onProgress: () => {} });
    if (corpus.tokenizer.hash !== t.tokenizer.hash) {
      throw new ConfigError(`eval: the corpus of the checkpoint's config (${corpus.dir}) now has another vocabulary than the checkpoint: its files changed; use --data`);
    }
    const s = split === 'valid' ? corpus.valid : split === 'test' ? corpus.test : corpus.test ?? corpus.valid;
    if (!s) throw new ConfigError(`eval: the run's corpus has no test split; use --split=valid or --data`);
    file = s.path;
    what = `the ${s === corpus.test ? 'test' : 'valid'} split of ${t.config.name}'s corpus`;
  }
  try {
    const tokens = TokenFile.open(file, { vocabulary: t.tokenizer });
    const r = evaluate(t.model, tokens, { batchSize, bptt });
    tokens.close();
    out(`${t.path} on ${what}: loss ${r.loss.toFixed(4)} nats/token, perplexity ${fmtPpl(r.ppl)} (${r.tokens.toLocaleString('en-US')} tokens, ${batchSize} lanes × ${bptt}, ${r.seconds.toFixed(1)} s)`);
    const json = args.options.get('json');
    if (typeof json === 'string') fs.writeFileSync(json, JSON.stringify({ checkpoint: t.path, data: what, step: t.checkpoint.step, ...r }, null, 2) + '\n');
    return { ...r, what };
  } finally {
    cleanup();
  }
}
