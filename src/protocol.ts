/**
 * Every message that crosses the daemon's Unix socket.
 *
 * Framing: newline-delimited JSON, one message per line, UTF-8, at most MAX_FRAME_BYTES per line.
 * A client sends requests `{id, type, ...}`; the daemon answers each with `{id, ok, result | error}`
 * in any order. The first request on a connection must be `hello`: it carries PROTOCOL_VERSION, and a
 * mismatch is answered with a `protocol-mismatch` error that tells the user what to run.
 */
import type { ErrorPayload } from './errors.js';

export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 1024 * 1024;

export const APP_STATUSES = ['stopped', 'starting', 'online', 'stopping', 'backoff', 'errored'] as const;
export type AppStatus = (typeof APP_STATUSES)[number];

/**
 * Why an instance ended. `vanished` is an instance adopted from an earlier daemon: it is not our child,
 * so its exit status cannot be known, only that it is gone.
 */
export const EXIT_REASONS = [
  'exited',
  'crashed',
  'killed-by-signal',
  'oom-killed',
  'stopped',
  'vanished',
  'spawn-failed',
  'memory-limit',
  'children-limit',
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export interface ExitRecord {
  code: number | null;
  signal: string | null;
  reason: ExitReason;
  /** ISO 8601 time of the exit. */
  at: string;
  instance: string;
  /** How long the instance ran, in ms. */
  uptimeMs: number;
  /** Processes of the instance still alive when the root exited, killed before the next start. */
  leftovers: number;
}

/** A fully resolved app definition: every duration in ms, every size in bytes, every path absolute. */
export interface AppSpec {
  name: string;
  script: string;
  args: string[];
  cwd: string;
  /** null: chosen by the script's extension; 'none': the script is executed directly. */
  interpreter: string | null;
  interpreterArgs: string[];
  /** Variables the user set for this app; shown (masked) by `show`. */
  env: Record<string, string>;
  /** The environment the app starts from (the caller's); never shown. */
  baseEnv: Record<string, string>;
  stopSignal: string;
  killTimeoutMs: number;
  autorestart: boolean;
  restartDelayMs: number;
  maxRestartDelayMs: number;
  /** An instance that ran this long was stable: the backoff starts again from restartDelayMs. */
  minUptimeMs: number;
  /** Give up (status errored) after this many restarts within restartWindowMs; null never gives up. */
  maxRestarts: number | null;
  restartWindowMs: number;
  maxMemoryBytes: number | null;
  maxChildren: number | null;
}

export interface AppLimits {
  memory: number | null;
  children: number | null;
}

/** One row of `ls --json`: a stable contract for scripts. */
export interface AppSummary {
  name: string;
  status: AppStatus;
  pid: number | null;
  restarts: number;
  uptimeMs: number | null;
  /** Whole-tree resident memory in bytes. */
  memory: number;
  /** Live processes of the instance, root included. */
  processes: number;
  limits: AppLimits;
  lastExit: ExitRecord | null;
}

export interface TreeProcess {
  pid: number;
  ppid: number;
  rss: number;
  cmd: string;
}

export interface AppDetail extends AppSummary {
  instance: string | null;
  /** When the current backoff ends (ISO 8601), if status is backoff. */
  nextStartAt: string | null;
  definition: Omit<AppSpec, 'baseEnv'>;
  logs: { out: string; err: string };
  tree: TreeProcess[];
  /** Recent exits, newest first. */
  exits: ExitRecord[];
}

export interface DaemonStatus {
  pid: number;
  version: string;
  protocol: number;
  uptimeMs: number;
  home: string;
  apps: number;
}

export type Target = { all: true } | { names: string[] };

export type Request =
  | { id: number; type: 'hello'; protocol: number; version: string }
  | { id: number; type: 'status' }
  | { id: number; type: 'ls' }
  | { id: number; type: 'show'; name: string }
  | { id: number; type: 'start'; apps: AppSpec[]; replace: boolean }
  | { id: number; type: 'stop'; target: Target }
  | { id: number; type: 'restart'; target: Target }
  | { id: number; type: 'delete'; target: Target }
  | { id: number; type: 'signal'; name: string; signal: string }
  | { id: number; type: 'kill' }
  | { id: number; type: 'daemon-stop' };

export type RequestType = Request['type'];

export interface ActionResult {
  /** Apps the request acted on, in order. */
  apps: string[];
}

export interface ResultMap {
  hello: { version: string; protocol: number; pid: number };
  status: DaemonStatus;
  ls: AppSummary[];
  show: AppDetail;
  start: ActionResult;
  stop: ActionResult;
  restart: ActionResult;
  delete: ActionResult;
  signal: ActionResult;
  kill: ActionResult;
  'daemon-stop': Record<string, never>;
}

export type Response =
  | { id: number | null; ok: true; result: unknown }
  | { id: number | null; ok: false; error: ErrorPayload };

/** What a caller sends: a request without its id, which the client assigns. */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;
