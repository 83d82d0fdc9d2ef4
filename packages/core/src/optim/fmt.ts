/** A value as it appears in error messages: strings quoted, arrays bracketed. Internal to optim/. */
export function fmt(v: unknown): string {
  return Array.isArray(v) ? `[${v.map(fmt).join(', ')}]` : typeof v === 'string' ? `'${v}'` : String(v);
}
