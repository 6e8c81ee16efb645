/**
 * Machine-wide memory facts: what the TUI's header shows and what a memory guard acts on.
 */
import { readFileSync } from 'node:fs';

export interface MachineMemory {
  totalBytes: number;
  availableBytes: number;
  /** /proc/pressure/memory "some avg10" (percent of time some task stalled on memory), where PSI exists. */
  pressureSomeAvg10: number | null;
}

export function readMachineMemory(): MachineMemory {
  let totalBytes = 0;
  let availableBytes = 0;
  try {
    const meminfo = readFileSync('/proc/meminfo', 'latin1');
    totalBytes = kilobytes(meminfo, 'MemTotal');
    availableBytes = kilobytes(meminfo, 'MemAvailable');
  } catch {
    // not Linux, or /proc unavailable: zeros say "unknown"
  }
  let pressureSomeAvg10: number | null = null;
  try {
    const match = /^some avg10=([\d.]+)/m.exec(readFileSync('/proc/pressure/memory', 'latin1'));
    if (match?.[1]) pressureSomeAvg10 = Number(match[1]);
  } catch {
    // kernels without PSI
  }
  return { totalBytes, availableBytes, pressureSomeAvg10 };
}

function kilobytes(meminfo: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(meminfo);
  return match?.[1] ? Number(match[1]) * 1024 : 0;
}
