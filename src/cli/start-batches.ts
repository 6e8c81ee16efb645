/**
 * A start request carries the caller's environment once and the apps' definitions. A config with more
 * apps than one request can hold (MAX_FRAME_BYTES; 10,000 apps are about 8 MB) is sent as several
 * requests, each under the limit. This is safe because a config start applies app by app: each app is
 * started, restarted or left alone on its own, and names were checked for duplicates when the config
 * was resolved. Anything that cannot fit at all (an environment or one definition larger than a
 * request) is refused before anything is sent, naming what is too large and what to do.
 */
import { formatBytes } from '../config/units.js';
import { AgentpmError } from '../errors.js';
import { MAX_FRAME_BYTES, type AppDefinition, type IfRunning, type StartResult } from '../protocol.js';

export interface StartBody {
  type: 'start';
  apps: AppDefinition[];
  env: Record<string, string>;
  ifRunning: IfRunning;
}

/** This process's environment, which a start request carries for its apps to start from. */
export function callerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  return env;
}

/** The request's own fields around the apps and the environment: type, id, ifRunning, brackets. */
const ENVELOPE_BYTES = 256;

function bytesOf(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

export function startBatches(apps: AppDefinition[], env: Record<string, string>, ifRunning: IfRunning, limit: number = MAX_FRAME_BYTES): StartBody[] {
  const envBytes = bytesOf(env);
  const budget = limit - ENVELOPE_BYTES - envBytes;
  if (budget < 16 * 1024) {
    const largest = Object.entries(env)
      .sort(([, a], [, b]) => b.length - a.length)
      .slice(0, 3)
      .map(([name, value]) => `${name} (${formatBytes(Buffer.byteLength(value))})`);
    throw new AgentpmError(
      'frame-too-large',
      `the environment this command runs in is ${formatBytes(envBytes)}; a start request carries it to the daemon (each app starts from it) and holds at most ${formatBytes(limit)}. ` +
        `Unset large variables before starting (largest: ${largest.join(', ')}).`,
    );
  }
  const batches: AppDefinition[][] = [];
  let current: AppDefinition[] = [];
  let used = 0;
  for (const app of apps) {
    const size = bytesOf(app) + 1; // and its comma
    if (size > budget) {
      throw new AgentpmError(
        'frame-too-large',
        `the definition of ${app.name} is ${formatBytes(size)}; with the environment (${formatBytes(envBytes)}) it does not fit in one request to the daemon (at most ${formatBytes(limit)}). ` +
          'Keep large data out of its args and env (in a file the app reads); nothing was started.',
      );
    }
    if (used + size > budget && current.length > 0) {
      batches.push(current);
      current = [];
      used = 0;
    }
    current.push(app);
    used += size;
  }
  if (current.length > 0) batches.push(current);
  return batches.map((batch) => ({ type: 'start', apps: batch, env, ifRunning }));
}

export function mergeStartResults(results: StartResult[]): StartResult {
  return {
    apps: results.flatMap((result) => result.apps),
    started: results.flatMap((result) => result.started),
    restarted: results.flatMap((result) => result.restarted),
    unchanged: results.flatMap((result) => result.unchanged),
  };
}
