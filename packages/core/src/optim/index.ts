/*
 * Optimizers, gradient clipping and learning-rate schedules. Read rules.ts first: every optimizer is
 * one update rule over ranges of flat Float32Arrays, applied per parameter or over a flat buffer.
 */
export * from './options.js';
export * from './rules.js';
export * from './optimizer.js';
export * from './clip.js';
export * from './schedules.js';
