/*
 * The one loop over tree levels. The state table starts as the leaves' states; each level gathers its
 * children's rows from the table (one gatherRows for h, two for the Tree-LSTM's memories), composes all
 * of the level's nodes at once, and appends them. So a batch costs one matrix product per level (at most
 * the tallest tree's height), not one per node.
 *
 * The table is immutable, so appending a level copies it: the copies add up to (levels × rows) floats per
 * batch, small beside the products for SST's shallow trees (height ≤ 29, mean 10). A node's gradient
 * arrives through its gathers and the concatenations, summed by autograd. gatherRows checks every child row
 * against the table so far, so a plan whose children are not below their parents is an error there.
 */
import { ShapeError, concat, fmtShape, gatherRows, reshape, tensor, type Tensor } from '@loom/core';
import type { TreeCell, TreeState } from './cells.js';
import type { PackedTrees } from './pack.js';

/**
 * All node states of a packed batch, rows in the table order of `packed` (leaves, then height 1, 2, …):
 * h [numNodes, H] (and c for the Tree-LSTM). `leafInputs` [numLeaves, D] are the leaves' word vectors
 * in row order.
 */
export function encodeTrees(cell: TreeCell, leafInputs: Tensor, packed: PackedTrees): TreeState {
  if (leafInputs.rank !== 2 || leafInputs.shape[0] !== packed.numLeaves || leafInputs.shape[1] !== cell.inputSize) {
    throw new ShapeError(`encodeTrees: 'leafInputs' must be [numLeaves, D] = [${packed.numLeaves}, ${cell.inputSize}], got ${fmtShape(leafInputs.shape)}`);
  }
  const H = cell.hiddenSize;
  const { h: h0, c: c0 } = cell.leaf(leafInputs);
  let h = h0, c = c0; // the state table: [rows so far, H]
  const opts = { dtype: 'int32' as const, backend: leafInputs.backend };
  for (const level of packed.levels) {
    const n = level.size;
    const hc = reshape(gatherRows(h, tensor(level.children, [n, 2], opts)), [n, 2 * H]); // [n, 2H]: left h, right h
    const next = c
      ? cell.compose({ h: hc, cLeft: gatherRows(c, tensor(level.left, [n], opts)), cRight: gatherRows(c, tensor(level.right, [n], opts)) })
      : cell.compose({ h: hc });
    h = concat([h, next.h], 0);
    if (c) c = concat([c, next.c!], 0);
  }
  return c ? { h, c } : { h };
}
