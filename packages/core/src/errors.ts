/** Raised for inputs that break an op's contract. The message names the op, the argument and what was expected. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

export class LoomError extends Error {
  override name = 'LoomError';
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
