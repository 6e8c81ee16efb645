/**
 * Sizes and durations as people write them: '512M', '1.5G', '10s', '5m'. Numbers are bytes and ms.
 */
export type Parsed = { ok: true; value: number } | { ok: false; message: string };

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, M: 1024 ** 2, MB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3, T: 1024 ** 4, TB: 1024 ** 4 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The largest size accepted anywhere (1 PiB): far above any machine, far below where numbers lose precision. */
export const MAX_SIZE_BYTES = 1024 ** 5;
/** The largest count accepted anywhere (restarts, children, ticks, retries). */
export const MAX_COUNT = 1_000_000;

export function parseSize(input: string | number): Parsed {
  let value: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return { ok: false, message: `expected a size such as '512M' or '1.5G', got ${input}` };
    value = Math.round(input);
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
    const unit = SIZE_UNITS[match?.[2]?.toUpperCase() ?? 'invalid'];
    if (!match || unit === undefined) return { ok: false, message: `expected a size such as '512M', '1.5G' or a number of bytes, got '${input}'` };
    value = Math.round(Number(match[1]) * unit);
  }
  if (!(value <= MAX_SIZE_BYTES)) return { ok: false, message: `sizes are at most 1024T (1 PiB), got ${typeof input === 'string' ? `'${input}'` : input}` };
  return { ok: true, value };
}

/**
 * A CPU share as people write it: '150%' of one core, or a number of cores (1.5, '1.5'). The value is in
 * percent of one core, as `ls` shows CPU.
 */
export function parseCpu(input: string | number): Parsed {
  const cores = typeof input === 'number' ? input : /^\s*(\d+(?:\.\d+)?)\s*$/.test(input) ? Number(input) : null;
  if (cores !== null) {
    if (!Number.isFinite(cores) || cores <= 0) return { ok: false, message: `expected a share of CPU such as '150%' (of one core) or a number of cores such as 1.5, got ${input}` };
    return { ok: true, value: cores * 100 };
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(String(input));
  if (!match) return { ok: false, message: `expected a share of CPU such as '50%', '150%' (of one core) or a number of cores such as 1.5, got '${String(input)}'` };
  return { ok: true, value: Number(match[1]) };
}

/**
 * The longest duration accepted anywhere (about 24.8 days): Node.js fires a timer armed for longer
 * after 1 ms, which would turn a long backoff into a tight restart loop.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

export function parseDuration(input: string | number): Parsed {
  let value: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) return { ok: false, message: `expected a duration such as '10s' or a number of ms, got ${input}` };
    value = Math.round(input);
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(input);
    if (!match) return { ok: false, message: `expected a duration such as '500ms', '10s', '5m', '1h' or a number of ms, got '${input}'` };
    value = Math.round(Number(match[1]) * (DURATION_UNITS[match[2] ?? 'ms'] ?? 1));
  }
  if (value > MAX_DURATION_MS) return { ok: false, message: `durations are at most 24d (${MAX_DURATION_MS} ms, the longest timer Node.js can arm), got ${typeof input === 'string' ? `'${input}'` : input}` };
  return { ok: true, value };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['K', 'M', 'G', 'T'];
  let value = bytes / 1024;
  let unit = 0;
  // Round first, then pick the unit, so 1023.99 KB reads 1.0 MB rather than 1024 KB.
  const rounded = (v: number): number => (v >= 100 ? Math.round(v) : Math.round(v * 10) / 10);
  while (rounded(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = rounded(value);
  return `${shown >= 100 ? shown.toFixed(0) : shown.toFixed(1)} ${units[unit]}B`;
}

/** A duration as a user would set it: '500ms' below a second, else as formatDuration. */
export function formatSetting(ms: number): string {
  return ms < 1000 ? `${ms}ms` : formatDuration(ms);
}

export function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}
