/*
 * `pnpm sample`: text generated from a checkpoint.
 *
 *   pnpm sample RUN_OR_CHECKPOINT [--prompt=TEXT] [--length=N] [--temperature=X] [--topK=K] [--seed=N] [--greedy]
 *
 * Defaults come from the run's config (its sample section). topK 0 samples among all tokens.
 */
import { parseArgs } from './cli.js';
import { ConfigError } from './config.js';
import { sampleText } from './lm.js';
import { intOption, numberOption, stringOption } from './options.js';
import { loadTrained } from './trained.js';

export const SAMPLE_USAGE = 'usage: pnpm sample RUN_FOLDER_OR_CHECKPOINT [--prompt=TEXT] [--length=N] [--temperature=X] [--topK=K] [--seed=N] [--greedy]';

export async function sampleMain(argv: readonly string[], io: { out?: (text: string) => void } = {}): Promise<string> {
  const out = io.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const args = parseArgs(argv, { valued: ['prompt', 'length', 'temperature', 'topK', 'seed'], flags: ['greedy'], overrides: false, usage: SAMPLE_USAGE });
  if (args.positional.length !== 1) throw new ConfigError(`sample: expected one run folder or checkpoint, got ${args.positional.length}\n${SAMPLE_USAGE}`);
  const o = args.options;
  const t = await loadTrained(args.positional[0], 'sample');
  const d = t.config.sample;
  const text = sampleText(t.model, t.tokenizer, {
    prompt: stringOption('prompt', o.get('prompt'), d.prompt).replace(/\\n/g, '\n'),
    length: intOption('length', o.get('length'), d.length > 0 ? d.length : 200, 1),
    temperature: numberOption('temperature', o.get('temperature'), d.temperature, { above: 0 }),
    topK: intOption('topK', o.get('topK'), d.topK, 0),
    seed: intOption('seed', o.get('seed'), d.seed, 0),
    greedy: o.has('greedy'),
  });
  out(text);
  return text;
}
