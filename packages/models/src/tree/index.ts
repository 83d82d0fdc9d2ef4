export { IGNORE_LABEL, packTrees, type PackTreesOptions, type PackedTrees, type TreeLevel, type TreeLike } from './pack.js';
export {
  BinaryTreeLSTMCell, TreeRNNCell, makeTreeCell, TREE_CELL_KINDS,
  type ChildStates, type TreeCell, type TreeCellKind, type TreeCellOptions, type TreeState,
} from './cells.js';
export { encodeTrees } from './encoder.js';
export {
  TreeClassifier, treeLoss, rootPredictions, TREE_CLASSIFIER_DEFAULTS,
  type TreeClassifierConfig, type TreeLossOptions,
} from './classifier.js';
