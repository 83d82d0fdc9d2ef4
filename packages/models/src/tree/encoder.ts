/*
 * The one loop over tree levels. The leaves' states start the frontier (pack.ts); each level gathers its
 * children's states from the frontier (one gatherRows for h, one for the Tree-LSTM's memories c), composes
 * all of the level's nodes with one matrix product, and makes the next frontier from its own states and
 * the carried ones. Every node's state is kept once, in its level's output, and the levels are joined
 * into the table (rows: leaves, height 1, height 2, …) at the end, in one concatenation.
 *
 * Why a frontier and not the whole table: tensors are immutable, so appending a level to a table copies
 * it, and the gradient of a gather from it is table-sized. Gathering from the whole table made one epoch
 * of SST spend about a fifth of its time copying tables; the frontiers hold 2.4 states per node in all.
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
  const leaves = cell.leaf(leafInputs);
  const hs = [leaves.h], cs = leaves.c ? [leaves.c] : null; // each level's own states
  let h = leaves.h, c = leaves.c; // the frontier
  const opts = { dtype: 'int32' as const, backend: leafInputs.backend };
  for (const level of packed.levels) {
    const n = level.size;
    const kids = tensor(level.childPositions, [n, 2], opts);
    const pick = (x: Tensor): Tensor => reshape(gatherRows(x, kids), [n, 2 * H]); // [n, 2H]: left child, right child
    const next = cell.compose({ h: pick(h), c: c ? pick(c) : undefined });
    hs.push(next.h);
    cs?.push(next.c!);
    const carried = level.carryPositions.length;
    if (carried === 0) {
      h = next.h;
      c = next.c;
    } else {
      const carry = tensor(level.carryPositions, [carried], opts);
      h = concat([next.h, gatherRows(h, carry)], 0);
      c = c ? concat([next.c!, gatherRows(c, carry)], 0) : undefined;
    }
  }
  return cs ? { h: concat(hs, 0), c: concat(cs, 0) } : { h: concat(hs, 0) };
}
