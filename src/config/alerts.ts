/**
 * Validation of the alerting, health and guard sections of a config, pure. Each problem names where it
 * is, the bad value and what is allowed; the caller collects them and starts nothing if there are any.
 */
import { GUARD_ACTIONS, LIST_LIMITS, NOTIFY_KINDS, type GuardSettings, type HealthCheck, type NotifyHook, type NotifyKind } from '../protocol.js';
import { maskText } from '../secrets.js';
import { DEFAULTS } from './defaults.js';
import { MAX_COUNT, parseDuration, parseSize } from './units.js';

export type Problem = (where: string, message: string) => void;

export const HEALTH_DEFAULTS = { interval: 10_000, timeout: 5_000, retries: 3, startPeriod: 10_000 } as const;
export const NOTIFY_TIMEOUT_MS = 10_000;

type Record_ = Record<string, unknown>;

/** A bad value as quoted in an error message, its credentials masked (a mistyped webhook is still a secret). */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  return maskText(typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value));
}

function durationOf(value: unknown, fallback: number, where: string, problem: Problem): number {
  if (value === undefined) return fallback;
  const parsed = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : { ok: false as const, message: `expected a duration such as '10s', got ${show(value)}` };
  if (parsed.ok) return parsed.value;
  problem(where, parsed.message);
  return fallback;
}

function unknownKeys(input: Record_, allowed: readonly string[], where: string, problem: Problem): void {
  for (const key of Object.keys(input)) if (!allowed.includes(key)) problem(`${where}.${key}`, `unknown field; expected one of ${allowed.join(', ')}`);
}

export function resolveNotify(input: unknown, where: string, problem: Problem): NotifyHook[] {
  if (input === undefined) return [];
  const list = Array.isArray(input) ? input : [input];
  if (list.length > LIST_LIMITS.notifyHooks) {
    problem(where, `at most ${LIST_LIMITS.notifyHooks} hooks, got ${list.length}; one command can fan out to several services`);
    return [];
  }
  return list.flatMap((entry, index): NotifyHook[] => {
    const at = Array.isArray(input) ? `${where}[${index}]` : where;
    if (typeof entry !== 'object' || entry === null) {
      problem(at, `expected { command } or { webhook }, got ${show(entry)}`);
      return [];
    }
    const hook = entry as Record_;
    unknownKeys(hook, ['command', 'webhook', 'events', 'timeout'], at, problem);
    const command = hook['command'];
    const webhook = hook['webhook'];
    if (command !== undefined && (typeof command !== 'string' || command === '')) problem(`${at}.command`, `expected a shell command, got ${show(command)}`);
    if (webhook !== undefined && (typeof webhook !== 'string' || !/^https?:\/\//.test(webhook))) problem(`${at}.webhook`, `expected an http(s) URL, got ${show(webhook)}`);
    if (command === undefined && webhook === undefined) problem(at, 'needs a command or a webhook (or both)');
    let events: NotifyKind[] | null = null;
    if (hook['events'] !== undefined) {
      const kinds = hook['events'];
      if (!Array.isArray(kinds) || !kinds.every((kind) => (NOTIFY_KINDS as readonly unknown[]).includes(kind))) {
        problem(`${at}.events`, `expected a list of ${NOTIFY_KINDS.join(', ')}, got ${show(kinds)}`);
      } else events = kinds as NotifyKind[];
    }
    return [
      {
        command: typeof command === 'string' && command !== '' ? command : null,
        webhook: typeof webhook === 'string' ? webhook : null,
        events,
        timeoutMs: durationOf(hook['timeout'], NOTIFY_TIMEOUT_MS, `${at}.timeout`, problem),
      },
    ];
  });
}

export function resolveHealth(input: unknown, where: string, problem: Problem): HealthCheck | null {
  if (input === undefined) return null;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problem(where, `expected { http: 'http://127.0.0.1:3000/health' } or { command: '...' }, got ${show(input)}`);
    return null;
  }
  const health = input as Record_;
  unknownKeys(health, ['http', 'command', 'interval', 'timeout', 'retries', 'startPeriod'], where, problem);
  const http = health['http'];
  const command = health['command'];
  if (http !== undefined && (typeof http !== 'string' || !/^https?:\/\//.test(http))) problem(`${where}.http`, `expected an http(s) URL, got ${show(http)}`);
  if (command !== undefined && (typeof command !== 'string' || command === '')) problem(`${where}.command`, `expected a shell command, got ${show(command)}`);
  if (http === undefined && command === undefined) problem(where, 'needs http or command');
  const retries = health['retries'] ?? HEALTH_DEFAULTS.retries;
  const retriesOk = typeof retries === 'number' && Number.isInteger(retries) && retries >= 1 && retries <= MAX_COUNT;
  if (!retriesOk) problem(`${where}.retries`, `expected a whole number from 1 to ${MAX_COUNT}, got ${show(retries)}`);
  return {
    http: typeof http === 'string' ? http : null,
    command: typeof command === 'string' ? command : null,
    intervalMs: Math.max(100, durationOf(health['interval'], HEALTH_DEFAULTS.interval, `${where}.interval`, problem)),
    timeoutMs: Math.max(50, durationOf(health['timeout'], HEALTH_DEFAULTS.timeout, `${where}.timeout`, problem)),
    retries: retriesOk ? retries : HEALTH_DEFAULTS.retries,
    startPeriodMs: durationOf(health['startPeriod'], HEALTH_DEFAULTS.startPeriod, `${where}.startPeriod`, problem),
  };
}

export function resolveGuard(input: unknown, where: string, problem: Problem): GuardSettings | null {
  if (input === undefined) return null;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problem(where, `expected { minAvailable: '10%' | '1G', pressure?: { someAvg10: 40 } }, got ${show(input)}`);
    return null;
  }
  const guard = input as Record_;
  unknownKeys(guard, ['minAvailable', 'pressure'], where, problem);
  const settings: GuardSettings = { minAvailableBytes: null, minAvailablePercent: null, pressureSomeAvg10: null };
  const min = guard['minAvailable'];
  if (typeof min === 'string' && /^\s*\d+(\.\d+)?\s*%\s*$/.test(min)) {
    const percent = Number.parseFloat(min);
    if (percent > 0 && percent < 100) settings.minAvailablePercent = percent;
    else problem(`${where}.minAvailable`, `a percentage must be between 0 and 100, got ${show(min)}`);
  } else if (min !== undefined) {
    const parsed = typeof min === 'string' || typeof min === 'number' ? parseSize(min) : { ok: false as const, message: `expected '10%' or a size such as '1G', got ${show(min)}` };
    if (parsed.ok) settings.minAvailableBytes = parsed.value;
    else problem(`${where}.minAvailable`, parsed.message);
  }
  const pressure = guard['pressure'];
  if (pressure !== undefined) {
    const avg = (pressure as Record_ | null)?.['someAvg10'];
    if (typeof avg === 'number' && avg > 0 && avg <= 100) settings.pressureSomeAvg10 = avg;
    else problem(`${where}.pressure`, `expected { someAvg10: <percent 1-100> }, got ${show(pressure)}`);
  }
  if (settings.minAvailableBytes === null && settings.minAvailablePercent === null && settings.pressureSomeAvg10 === null) {
    problem(where, 'needs minAvailable or pressure');
  }
  return settings;
}

export function resolveGuardAction(input: unknown, where: string, problem: Problem): (typeof GUARD_ACTIONS)[number] {
  if (input === undefined) return DEFAULTS.guardAction;
  if (typeof input === 'string' && (GUARD_ACTIONS as readonly string[]).includes(input)) return input as (typeof GUARD_ACTIONS)[number];
  problem(where, `expected 'restart' or 'stop', got ${show(input)}`);
  return DEFAULTS.guardAction;
}
