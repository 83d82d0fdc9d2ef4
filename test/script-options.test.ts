// The eval-* and bench-* scripts' command line (scripts/lib/cli.ts parseOptions): typed from the defaults, strict.
import { describe, expect, test } from 'vitest';
import { optionsHelp, parseOptions } from '../scripts/lib/cli.js';
import { ConfigError } from '../scripts/lib/config.js';

const defaults = {
  data: 'data/x', // a string
  epochs: 10, // a number
  lr: 0.01,
  joint: false, // a boolean
  verbose: false,
  shape: [] as string[], // repeatable
};
const parse = (...argv: string[]) => parseOptions('eval-x', defaults, argv);

describe('parseOptions', () => {
  test('--key=value and --key value, typed from the default; untouched keys keep theirs', () => {
    expect(parse('--data=a/b', '--epochs', '3', '--lr=2.5e-1')).toEqual({ ...defaults, data: 'a/b', epochs: 3, lr: 0.25 });
    expect(parse('--data', 'c', '--data=d').data).toBe('d'); // the last one wins
    expect(parse('--data=')).toMatchObject({ data: '' });
    expect(parse('--data=a=b').data).toBe('a=b'); // only the first '=' separates
    expect(parse()).toEqual(defaults);
    expect(defaults.data).toBe('data/x'); // the defaults object is not written to
  });

  test('booleans: bare, =true|false, or followed by true|false', () => {
    expect(parse('--joint')).toMatchObject({ joint: true, verbose: false });
    expect(parse('--joint=true', '--verbose=false')).toMatchObject({ joint: true, verbose: false });
    expect(parse('--joint', 'false', '--verbose', 'true')).toMatchObject({ joint: false, verbose: true });
    expect(parse('--joint', '--verbose')).toMatchObject({ joint: true, verbose: true });
    expect(() => parse('--joint=yes')).toThrow("eval-x: --joint must be true or false, got 'yes'");
  });

  test('numbers: a bad number is an error naming the script, the key and the value', () => {
    expect(() => parse('--epochs=abc')).toThrow(ConfigError);
    expect(() => parse('--epochs=abc')).toThrow("eval-x: --epochs must be a number, got 'abc'");
    expect(() => parse('--epochs', '')).toThrow("--epochs must be a number, got ''"); // Number('') would be 0
    expect(() => parse('--epochs=0x10')).toThrow('--epochs must be a number');
    expect(() => parse('--lr=Infinity')).toThrow('--lr must be a number');
    expect(parse('--lr=-1').lr).toBe(-1);
    expect(() => parseOptions('eval-x', defaults, ['--lr=-1'], { min: 0 })).toThrow("eval-x: --lr must be a number ≥ 0, got '-1'");
  });

  test('an unknown key names the script, the close matches and the known keys', () => {
    expect(() => parse('--epoch=3')).toThrow(ConfigError);
    expect(() => parse('--epoch=3')).toThrow("eval-x: unknown option '--epoch'; did you mean --epochs? (known: --data, --epochs, --lr, --shape, --joint, --verbose, --help)");
    expect(() => parse('--zzzzzzzz')).toThrow("eval-x: unknown option '--zzzzzzzz' (known:");
    expect(() => parse('stray')).toThrow("eval-x: unexpected argument 'stray'");
  });

  test('a missing value is an error naming the key', () => {
    expect(() => parse('--data')).toThrow('eval-x: --data needs a value: --data=VALUE');
    expect(() => parse('--epochs', '--joint')).toThrow('eval-x: --epochs needs a value');
  });

  test('a -- anywhere is ignored (pnpm passes it on)', () => {
    expect(parse('--', '--epochs=2', '--', '--joint')).toEqual({ ...defaults, epochs: 2, joint: true });
  });

  test('a string[] default makes a repeatable option', () => {
    expect(parse('--shape', '1x2x3', '--shape=4x5x6').shape).toEqual(['1x2x3', '4x5x6']);
    expect(parse().shape).toEqual([]);
  });

  test("validate: the script's own rules, with messages naming the key", () => {
    const run = (...argv: string[]) => parseOptions('eval-x', { ...defaults, set: 'en' }, argv, {
      validate: (o, check) => {
        check.int(1, 'epochs');
        check.oneOf('set', ['en', 'en-10k']);
        if (o.joint && o.lr > 0.1) check.fail('lr', 'at most 0.1 with --joint');
      },
    });
    expect(run('--epochs=2', '--set=en-10k')).toMatchObject({ epochs: 2, set: 'en-10k' });
    expect(() => run('--epochs=2.5')).toThrow('eval-x: --epochs must be a positive integer, got 2.5');
    expect(() => run('--epochs=0')).toThrow('--epochs must be a positive integer, got 0');
    expect(() => run('--set=fr')).toThrow("eval-x: --set must be one of en, en-10k, got 'fr'");
    expect(() => run('--joint', '--lr=0.5')).toThrow('eval-x: --lr must be at most 0.1 with --joint, got 0.5');
  });

  test('--help lists every option with its default', () => {
    const help = optionsHelp('eval-x', { ...defaults, out: '' });
    expect(help).toContain('usage: tsx scripts/eval-x.ts');
    expect(help).toContain('  --epochs=10');
    expect(help).toContain('  --joint=false');
    expect(help).toContain("  --out=''");
    expect(help).toContain('  --shape=VALUE (repeatable; default none)');
  });
});
