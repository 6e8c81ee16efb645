/**
 * The memory-pressure guard: act before earlyoom and the kernel do, gracefully and predictably. When
 * available memory falls under the threshold (or PSI memory pressure rises over it), one victim is
 * chosen, the lowest `priority` first and then the largest tree, and restarted or stopped (its
 * `guardAction`) through the normal stop path. Then the guard waits for memory to recover before it
 * chooses another, so it never empties the machine in one burst. Off unless configured.
 */
import type { GuardSettings, MachineMemory } from '../protocol.js';

export interface GuardCandidate {
  name: string;
  priority: number;
  memory: number;
}

export function underPressure(memory: MachineMemory, settings: GuardSettings): string | null {
  const available = memory.availableBytes;
  if (settings.minAvailableBytes !== null && available < settings.minAvailableBytes) {
    return `available memory ${available} bytes < ${settings.minAvailableBytes}`;
  }
  if (settings.minAvailablePercent !== null && memory.totalBytes > 0 && (available / memory.totalBytes) * 100 < settings.minAvailablePercent) {
    return `available memory ${((available / memory.totalBytes) * 100).toFixed(1)}% < ${settings.minAvailablePercent}%`;
  }
  if (settings.pressureSomeAvg10 !== null && memory.pressureSomeAvg10 !== null && memory.pressureSomeAvg10 > settings.pressureSomeAvg10) {
    return `memory pressure some avg10 ${memory.pressureSomeAvg10} > ${settings.pressureSomeAvg10}`;
  }
  return null;
}

/** Lowest priority first, then the largest tree; ties by name, so the choice is predictable. */
export function pickVictim(candidates: readonly GuardCandidate[]): GuardCandidate | null {
  return [...candidates].sort((a, b) => a.priority - b.priority || b.memory - a.memory || a.name.localeCompare(b.name))[0] ?? null;
}

export type GuardPhase = 'watching' | 'waiting-for-recovery';
