/*
 * Command lines of train / eval / sample: positional arguments, named options the script declares
 * (`--resume=PATH` or `--resume PATH`), and every other `--key=value` as a config override. Anything the
 * script did not declare and that is not `--key=value` is an error naming it.
 */
import { ConfigError } from './config.js';

export interface ParsedArgs {
  positional: string[];
  /** Declared options: name → value (true for a bare flag). */
  options: Map<string, string | true>;
  /** Config overrides, in order. */
  overrides: { key: string; value: string | true }[];
}

export interface CliSpec {
  /** Options taking a value (`--name=v` or `--name v`). */
  valued: readonly string[];
  /** Options without a value. */
  flags: readonly string[];
  /** Whether unknown `--key=value` go to config overrides (train) or are errors (eval, sample). */
  overrides: boolean;
  usage: string;
}

export function parseArgs(argv: readonly string[], spec: CliSpec): ParsedArgs {
  const out: ParsedArgs = { positional: [], options: new Map(), overrides: [] };
  // pnpm passes a lone '--' through when the user writes `pnpm train -- --x=1`.
  const args = argv.filter((a, i) => !(a === '--' && i === 0));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith('--') || arg === '--') {
      out.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (spec.flags.includes(name)) {
      if (value !== undefined) throw new ConfigError(`--${name} takes no value, got '${arg}'\n${spec.usage}`);
      out.options.set(name, true);
    } else if (spec.valued.includes(name)) {
      const v = value ?? args[++i];
      if (v === undefined || (value === undefined && v.startsWith('--'))) throw new ConfigError(`--${name} needs a value: --${name}=VALUE\n${spec.usage}`);
      out.options.set(name, v);
    } else if (spec.overrides) {
      if (name === '') throw new ConfigError(`bad argument '${arg}': expected --key=value\n${spec.usage}`);
      out.overrides.push({ key: name, value: value ?? true });
    } else {
      const known = [...spec.valued, ...spec.flags].map((n) => `--${n}`).join(', ');
      throw new ConfigError(`unknown option '--${name}' (known: ${known})\n${spec.usage}`);
    }
  }
  return out;
}

/** Runs a script's main, printing errors of the user's making (config, data, checkpoint) without a stack. */
export function runMain(main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (e: unknown) => {
      const err = e as Error;
      const expected = ['ConfigError', 'DataError', 'CheckpointError', 'LoomError', 'ShapeError'].includes(err?.name);
      process.stderr.write(`error: ${expected ? err.message : err?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
