/**
 * Numbers from command-line flags, bounded where they are typed: a value the daemon or the system would
 * refuse is refused here, naming the flag and the range, rather than later as a protocol error.
 */
import { AgentpmError } from '../errors.js';

export function wholeNumberFlag(flag: string, text: string, min: number, max: number): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new AgentpmError('invalid-argument', `${flag} expects a whole number from ${min} to ${max}, got '${text}'`);
  }
  return value;
}
