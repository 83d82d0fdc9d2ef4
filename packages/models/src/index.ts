/**
 * @loom/models: models on @loom/core.
 */
// Recurrent cells and layers (docs/recurrent.md).
export * from './recurrent/index.js';
