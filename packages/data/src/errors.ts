/** Where a bad input was found; every part is optional (an in-memory string has no file). */
export interface DataErrorLocation {
  file?: string;
  line?: number;
  column?: number;
}

/**
 * The one error type the data package throws for bad input: a malformed line, an empty corpus,
 * an id out of range, a header or vocabulary mismatch. The message starts with `file:line:column: `
 * when those are known, then says what was expected. Anything else thrown from this package is a bug.
 */
export class DataError extends Error {
  override readonly name = 'DataError';
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(message: string, where: DataErrorLocation = {}) {
    super(locationPrefix(where) + message);
    this.file = where.file;
    this.line = where.line;
    this.column = where.column;
  }
}

function locationPrefix({ file, line, column }: DataErrorLocation): string {
  if (file === undefined && line === undefined) return '';
  let s = file ?? '<input>';
  if (line !== undefined) s += `:${line}`;
  if (line !== undefined && column !== undefined) s += `:${column}`;
  return s + ': ';
}
