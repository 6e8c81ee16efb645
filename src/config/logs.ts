/**
 * An app's `logs` field (and a config's top-level `logs`, the default for its apps): rotation of the
 * app's log files by the relay. Each field the app sets wins over the config's, which wins over the
 * default; every problem is reported with the field's full name.
 */
import type { LogPolicy } from '../protocol.js';
import { DEFAULT_LOG_POLICY, MAX_LOG_KEEP, MIN_LOG_MAX_SIZE } from './defaults.js';
import { formatBytes, parseSize } from './units.js';

const FIELDS = ['maxSize', 'keep', 'compress'] as const;

type Problem = (field: string, message: string) => void;

/** `where`: the field's name in messages ('logs'). `base`: the policy the fields not set keep. */
export function resolveLogs(input: unknown, where: string, problem: Problem, base: LogPolicy = DEFAULT_LOG_POLICY): LogPolicy {
  if (input === undefined) return base;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problem(where, `expected an object such as { maxSize: '10M', keep: 5, compress: false }, got ${JSON.stringify(input) ?? String(input)}`);
    return base;
  }
  const fields = input as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!(FIELDS as readonly string[]).includes(key)) problem(`${where}.${key}`, `unknown field; known fields: ${FIELDS.join(', ')}`);
  }
  const policy: LogPolicy = { ...base };
  const { maxSize, keep, compress } = fields;
  if (maxSize !== undefined) {
    const parsed = typeof maxSize === 'string' || typeof maxSize === 'number' ? parseSize(maxSize) : { ok: false as const, message: `expected a size such as '10M', got ${JSON.stringify(maxSize)}` };
    if (!parsed.ok) problem(`${where}.maxSize`, parsed.message);
    else if (parsed.value < MIN_LOG_MAX_SIZE) problem(`${where}.maxSize`, `must be at least ${formatBytes(MIN_LOG_MAX_SIZE)} ('1K'), got ${JSON.stringify(maxSize)}`);
    else policy.maxSizeBytes = parsed.value;
  }
  if (keep !== undefined) {
    if (typeof keep === 'number' && Number.isInteger(keep) && keep >= 0 && keep <= MAX_LOG_KEEP) policy.keep = keep;
    else problem(`${where}.keep`, `expected a whole number of rotated files from 0 to ${MAX_LOG_KEEP}, got ${JSON.stringify(keep)}`);
  }
  if (compress !== undefined) {
    if (typeof compress === 'boolean') policy.compress = compress;
    else problem(`${where}.compress`, `expected true or false, got ${JSON.stringify(compress)}`);
  }
  return policy;
}
