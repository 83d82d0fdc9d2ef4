/**
 * @loom/coordinator: data-parallel truncated-BPTT training on worker threads.
 * Read in this order: config (what you give) → protocol (what is said) → shared-memory (where the
 * bytes live) → barrier and reduce (the synchronisation and the arithmetic) → worker → pool → trainer.
 */
export {
  ConfigError, TRAINER_DEFAULTS, describeConfig, resolveConfig,
  type CheckpointConfig, type DataConfig, type EvalConfig, type FaultConfig, type FaultInjection, type ModelSpec,
  type OptimizerConfig, type ResolvedCheckpointConfig, type ResolvedConfig, type ScheduleConfig, type TokenSourceSpec, type TrainerConfig,
} from './config.js';
export type {
  CheckpointEvent, DoneEvent, EpochEvent, EvalEvent, FaultEvent, FaultReport, SkipEvent, StartEvent, StepEvent,
  StoppedEvent, TrainerEvent, WorkerTiming,
} from './protocol.js';
export {
  Trainer, WorkerFault, checkpointExtra, train, type EvalResult, type EvaluateOptions, type TrainResult, type TrainerOptions,
} from './trainer.js';
export type { SequenceModel } from './model.js';
export { onInterrupt } from './interrupt.js';
export { CHUNK, globalNorm, reduceSlice, type SliceBounds } from './reduce.js';
