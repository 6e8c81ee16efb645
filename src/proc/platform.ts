/**
 * The process table of this platform, created once per process. Apart from table.ts, so that the
 * interface never imports an implementation (linux.ts imports the interface): no import circle.
 */
import type { ProcessTable } from './table.js';

let shared: ProcessTable | undefined;

export async function createProcessTable(): Promise<ProcessTable> {
  if (shared) return shared;
  if (process.platform === 'linux') {
    const { LinuxProcessTable } = await import('./linux.js');
    shared = new LinuxProcessTable();
    return shared;
  }
  // macOS would read the same facts from libproc/sysctl (`ps -axo pid,ppid,pgid,sess,lstart,rss,time,stat`
  // for a first cut, and `ps -E` for tags); nothing above this interface would change.
  throw new Error(`agentpm supports Linux for now; ${process.platform} needs a ProcessTable implementation`);
}
