/** `--since 10m`, `--since 2h`, `--since 2026-11-29T10:00`: the moment, in microseconds since the epoch. */
import { parseDuration } from '../config/units.js';
import { AgentpmError } from '../errors.js';

const DATE = /^\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?$/;

export function parseSince(input: string, nowMs: number = Date.now()): number {
  const trimmed = input.trim();
  if (DATE.test(trimmed)) {
    // A date alone would be read as UTC midnight, a date and time as local time: both local here.
    const ms = Date.parse(/^\d{4}-\d\d-\d\d$/.test(trimmed) ? `${trimmed}T00:00` : trimmed.replace(' ', 'T'));
    if (!Number.isNaN(ms)) return ms * 1000;
  } else {
    const duration = parseDuration(trimmed);
    if (duration.ok) return (nowMs - duration.value) * 1000;
  }
  throw new AgentpmError(
    'invalid-argument',
    `--since expects a duration back from now (10m, 2h, 1d; at most 24d) or a date in local time (2026-11-29, 2026-11-29T10:00, or with Z or an offset), got '${input}'`,
  );
}
