/**
 * Whether the daemon takes one more client connection. Clients get what supervision does not need:
 * a fixed number of connections, and never the last descriptors below the open-file limit, which
 * spawning, killing, log files, /proc reads and registry writes need. A client that cannot be taken
 * is told why; supervision never finds the descriptor table full because clients filled it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { ErrorPayload } from '../errors.js';

/** At most this many client connections at once (`monit`, `events --follow`, CLI commands). */
export const MAX_CONNECTIONS = 256;
/**
 * Descriptors below the soft limit that clients never get (up to 16 of them may, for at most 250 ms,
 * hold refused connections waiting to be told why: see ControlServer.refuse).
 */
export const DESCRIPTOR_RESERVE = 64;

export interface DescriptorUse {
  open: number;
  /** The soft RLIMIT_NOFILE, which can change while the daemon runs (prlimit). */
  limit: number;
}

export interface Refusal {
  limit: 'connections' | 'descriptors';
  error: ErrorPayload;
}

/** Why a new connection is refused, or null to take it. `connections` counts those already served. */
export function refusal(connections: number, descriptors: DescriptorUse | null = descriptorUse()): Refusal | null {
  if (connections >= MAX_CONNECTIONS) {
    const message =
      `the daemon already serves ${MAX_CONNECTIONS} connections, the most it takes at once; ` +
      'close idle ones (agentpm monit, agentpm events --follow, scripts that keep a connection open) and try again';
    return { limit: 'connections', error: { code: 'daemon-busy', message } };
  }
  if (descriptors !== null && descriptors.open > descriptors.limit - DESCRIPTOR_RESERVE) {
    const message =
      `the daemon has ${descriptors.open} of its ${descriptors.limit} file descriptors open and keeps the last ${DESCRIPTOR_RESERVE} for supervising apps; ` +
      'close idle connections (agentpm monit, agentpm events --follow) or raise its open-file limit (ulimit -n, LimitNOFILE=), then try again';
    return { limit: 'descriptors', error: { code: 'daemon-busy', message } };
  }
  return null;
}

/**
 * Open descriptors and the soft limit, from /proc; null where /proc is not there. A table so full that
 * even listing it fails counts as full.
 */
export function descriptorUse(): DescriptorUse | null {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'latin1');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : { open: Infinity, limit: 0 };
  }
  const soft = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits)?.[1];
  if (soft === undefined || soft === 'unlimited') return null;
  try {
    // Less one: the listing's own descriptor.
    return { open: readdirSync('/proc/self/fd').length - 1, limit: Number(soft) };
  } catch {
    return { open: Infinity, limit: Number(soft) };
  }
}
