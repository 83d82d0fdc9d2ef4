/* Typed command-line options of eval and sample: each parsed strictly, errors naming the option. */
import { ConfigError } from './config.js';

export function intOption(name: string, v: string | true | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min)) throw new ConfigError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

export function numberOption(name: string, v: string | true | undefined, fallback: number, { above }: { above: number }): number {
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(v) ? Number(v) : NaN;
  if (!(Number.isFinite(n) && n > above)) throw new ConfigError(`--${name} must be a number > ${above}, got ${JSON.stringify(v)}`);
  return n;
}

export function stringOption(name: string, v: string | true | undefined, fallback: string): string {
  if (v === undefined) return fallback;
  if (v === true) throw new ConfigError(`--${name} needs a value`);
  return v;
}
