/*
 * Command lines of the scripts. parseArgs reads train / eval / sample: positional arguments, named options
 * the script declares (`--resume=PATH` or `--resume PATH`), and every other `--key=value` as a config
 * override. Anything the script did not declare and that is not `--key=value` is an error naming it.
 * parseOptions, on top of it, reads the eval-* and bench-* scripts: a block of commented defaults is the
 * whole command line, each value typed from its default.
 */
import { ConfigError, closeMatches } from './config.js';

export interface ParsedArgs {
  positional: string[];
  /** Declared options: name → value (true for a bare flag); the last one given wins. */
  options: Map<string, string | true>;
  /** Declared options in the order given, every occurrence (for options that may be repeated). */
  given: { name: string; value: string | true }[];
  /** Config overrides, in order. */
  overrides: { key: string; value: string | true }[];
}

export interface CliSpec {
  /** Options taking a value (`--name=v` or `--name v`). */
  valued: readonly string[];
  /** Options without a value. */
  flags: readonly string[];
  /** Options that are true when bare (`--name`) and also take `--name=true|false` or `--name true|false`. */
  booleans?: readonly string[];
  /** Whether unknown `--key=value` go to config overrides (train) or are errors (eval, sample). */
  overrides: boolean;
  usage: string;
  /** The script's name, put before every error ('eval-babi: --x needs a value'). */
  prog?: string;
}

export function parseArgs(argv: readonly string[], spec: CliSpec): ParsedArgs {
  const out: ParsedArgs = { positional: [], options: new Map(), given: [], overrides: [] };
  const error = (message: string): ConfigError => new ConfigError(`${spec.prog ? `${spec.prog}: ` : ''}${message}\n${spec.usage}`);
  const set = (name: string, value: string | true): void => {
    out.options.set(name, value);
    out.given.push({ name, value });
  };
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
      if (value !== undefined) throw error(`--${name} takes no value, got '${arg}'`);
      set(name, true);
    } else if (spec.booleans?.includes(name)) {
      // `--name true` reads as `--name=true`; any other next word is not this option's.
      const next = args[i + 1];
      set(name, value ?? (next === 'true' || next === 'false' ? args[++i] : true));
    } else if (spec.valued.includes(name)) {
      const v = value ?? args[++i];
      if (v === undefined || (value === undefined && v.startsWith('--'))) throw error(`--${name} needs a value: --${name}=VALUE`);
      set(name, v);
    } else if (spec.overrides) {
      if (name === '') throw error(`bad argument '${arg}': expected --key=value`);
      out.overrides.push({ key: name, value: value ?? true });
    } else {
      const declared = [...spec.valued, ...(spec.booleans ?? []), ...spec.flags];
      const near = closeMatches(name, declared);
      const hint = near.length ? `; did you mean ${near.map((n) => `--${n}`).join(' or ')}?` : '';
      throw error(`unknown option '--${name}'${hint} (known: ${declared.map((n) => `--${n}`).join(', ')})`);
    }
  }
  return out;
}

/** What a script's defaults may hold; each option's type is its default's (a string[] default: repeatable). */
export type OptionValue = string | number | boolean | string[];

/** The checks a script's `validate` runs on the parsed options; each error names the script and the key. */
export interface OptionChecks<T> {
  /** Throws `<script>: --<key> must be <expected>, got <its value>`. */
  fail(key: keyof T & string, expected: string): never;
  /** Each key must hold an integer >= min. */
  int(min: number, ...keys: (keyof T & string)[]): void;
  /** The key must hold one of these strings. */
  oneOf(key: keyof T & string, values: readonly string[]): void;
}

export interface ParseOptionsSpec<T> {
  /** The least value every number option may take (the eval scripts take no negative numbers); default none. */
  min?: number;
  /** The script's own rules (ranges, choices, rules between keys), run on the parsed options. */
  validate?: (options: T, check: OptionChecks<T>) => void;
}

// The number syntax the training config accepts too: no '', '0x10' or 'Infinity' slipping through Number().
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * The command line of an eval-* or bench-* script: `--key=value` or `--key value` for each key of
 * `defaults`, typed from its default (numbers, `true`/`false` or a bare `--key` for booleans, strings, and
 * string[] for an option that may be given several times); a `--` anywhere is ignored (pnpm passes it on).
 * Unknown keys (with close matches), missing values and mistyped values are ConfigErrors naming the
 * script and the key. `--help` prints the options and their defaults and exits.
 */
export function parseOptions<T extends { [K in keyof T]: OptionValue }>(
  script: string, defaults: T, argv: readonly string[], spec: ParseOptionsSpec<T> = {},
): T {
  const keys = Object.keys(defaults) as (keyof T & string)[];
  const usage = `usage: tsx scripts/${script}.ts [--key=value ...] (--help lists the options and their defaults)`;
  const args = parseArgs(argv, {
    valued: keys.filter((k) => typeof defaults[k] !== 'boolean'),
    booleans: keys.filter((k) => typeof defaults[k] === 'boolean'),
    flags: ['help'],
    overrides: false,
    usage,
    prog: script,
  });
  if (args.options.has('help')) {
    process.stdout.write(`${optionsHelp(script, defaults)}\n`);
    process.exit(0);
  }
  const stray = args.positional.filter((a) => a !== '--');
  if (stray.length) throw new ConfigError(`${script}: unexpected argument '${stray[0]}': options are --key=value\n${usage}`);

  const got = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v));
  const fail = (key: string, expected: string, value: unknown): never => {
    throw new ConfigError(`${script}: --${key} must be ${expected}, got ${got(value)}`);
  };
  const options: Record<string, OptionValue> = { ...defaults };
  const lists = new Map<string, string[]>(); // repeatable options: every occurrence, in order
  for (const { name, value } of args.given) {
    const def = defaults[name as keyof T];
    if (typeof def === 'boolean') {
      if (value !== true && value !== 'true' && value !== 'false') fail(name, 'true or false', value);
      options[name] = value === true || value === 'true';
    } else if (typeof def === 'number') {
      const n = typeof value === 'string' && NUMBER.test(value.trim()) ? Number(value) : NaN;
      if (!Number.isFinite(n)) fail(name, 'a number', value);
      if (spec.min !== undefined && n < spec.min) fail(name, `a number ≥ ${spec.min}`, value);
      options[name] = n;
    } else if (Array.isArray(def)) lists.set(name, [...(lists.get(name) ?? []), String(value)]);
    else options[name] = String(value);
  }
  for (const [name, list] of lists) options[name] = list;

  const typed = options as T;
  spec.validate?.(typed, {
    fail: (key, expected) => fail(key, expected, typed[key]),
    int: (min, ...ks) => {
      for (const k of ks) {
        const v = typed[k];
        if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= min)) {
          fail(k, min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`, v);
        }
      }
    },
    oneOf: (key, values) => {
      if (!values.includes(typed[key] as string)) fail(key, `one of ${values.join(', ')}`, typed[key]);
    },
  });
  return typed;
}

/** `--help` of parseOptions: each option with its default. */
export function optionsHelp(script: string, defaults: Record<string, OptionValue>): string {
  const shown = (v: OptionValue): string => (Array.isArray(v) ? `VALUE (repeatable; default ${v.length ? v.join(', ') : 'none'})` : v === '' ? "''" : String(v));
  const lines = Object.entries(defaults).map(([k, v]) => `  --${k}=${shown(v)}`);
  return [`usage: tsx scripts/${script}.ts [--key=value ...]`, `options, with their defaults (the comments in scripts/${script}.ts say what each does):`, ...lines].join('\n');
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
