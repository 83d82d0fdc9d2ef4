import { EpochDecayLR, ExponentialLR, ReduceLROnPlateau, StepLR, WarmupCosine, type LRSchedule } from '@loom/core';
import type { ScheduleConfig } from './config.js';

/** The schedule of a config, setting `optimizer`'s lr (also used to validate the config). */
export function makeSchedule(s: ScheduleConfig | null, optimizer: { lr: number }): LRSchedule | null {
  if (!s) return null;
  const { kind, ...o } = s;
  switch (kind) {
    case 'step': return new StepLR(optimizer, o as never);
    case 'exponential': return new ExponentialLR(optimizer, o as never);
    case 'epochDecay': return new EpochDecayLR(optimizer, o as never);
    case 'warmupCosine': return new WarmupCosine(optimizer, o as never);
    case 'plateau': return new ReduceLROnPlateau(optimizer, o as never);
  }
}
