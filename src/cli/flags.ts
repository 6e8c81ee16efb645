/**
 * Numbers from command-line flags, bounded where they are typed: a value the daemon or the system would
 * refuse is refused here, naming the flag and the range, rather than later as a protocol error.
 */
import { constants } from 'node:os';
import { AgentpmError } from '../errors.js';

export function wholeNumberFlag(flag: string, text: string, min: number, max: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new AgentpmError('invalid-argument', `${flag} expects a whole number from ${min} to ${max}, got '${text}'`);
  }
  return value;
}

/** 'usr2', 'SIGUSR2' → 'SIGUSR2'; a name this system does not know is refused. */
export function normalizeSignal(input: string): string {
  const name = input.toUpperCase().startsWith('SIG') ? input.toUpperCase() : `SIG${input.toUpperCase()}`;
  if (!(name in constants.signals)) {
    throw new AgentpmError('invalid-argument', `unknown signal ${input}; use a name such as SIGTERM, SIGINT, SIGHUP, SIGUSR1`);
  }
  return name;
}
