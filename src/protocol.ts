/**
 * Every message that crosses the daemon's Unix socket.
 *
 * Framing: newline-delimited JSON, one message per line, UTF-8, at most MAX_FRAME_BYTES per line.
 * A client sends requests `{id, type, ...}`; the daemon answers each with `{id, ok, result | error}`
 * in any order. The first request on a connection must be `hello`: it carries PROTOCOL_VERSION, and a
 * mismatch is answered with a `protocol-mismatch` error that tells the user what to run. After a
 * `subscribe`, the daemon also sends `{push: 'event', event}` frames on that connection.
 */
import type { BackendKind, ContainmentInfo } from './cgroup/types.js';
import type { ErrorPayload } from './errors.js';
import type { MachineMemory } from './proc/machine.js';

export type { MachineMemory } from './proc/machine.js';

/**
 * 2: `start` carries the caller's environment once (`env`), not once per app.
 * 3: app definitions gained fields (logs, dependsOn, cronRestart, hardMemory, maxTasks, maxCpu), and
 * `flush` and the metrics settings are new: a CLI finding a daemon of protocol 2 replaces it (the
 * apps keep running and are adopted) rather than meeting "unrecognized key" on every start.
 */
export const PROTOCOL_VERSION = 3;
/**
 * The largest request the daemon reads. A start carries the caller's environment once, and Linux
 * allows a process at most 2 MiB of arguments and environment by default (ARG_MAX): any environment
 * fits. A start with more apps than fit is sent in several requests by the CLI (see cli/start-batches.ts).
 */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/**
 * The largest reply a client reads: the daemon is trusted, and `ls` of 10,000 apps or 10,000 events
 * are a few MB.
 */
export const MAX_REPLY_BYTES = 256 * 1024 * 1024;

/**
 * How many of each list a definition or a request may hold. The daemon refuses more; a config and the
 * command line check the same numbers first, so that the error names the field, not the protocol.
 */
export const LIST_LIMITS = {
  watchPaths: 100,
  dependsOn: 100,
  ignorePatterns: 1000,
  notifyHooks: 20,
  unmanagedPatterns: 100,
  /** Characters of a --match / reap.unmanaged regular expression. */
  patternLength: 1000,
  reapPids: 10_000,
} as const;

export type HealthState = 'starting' | 'healthy' | 'unhealthy';

/** `waiting`: meant to run, not started yet because an app it depends on (`dependsOn`) is not ready. */
export const APP_STATUSES = ['stopped', 'waiting', 'starting', 'online', 'stopping', 'backoff', 'errored'] as const;
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
  'health-failed',
  'hung',
  'memory-pressure',
  /** Restarted by its `cronRestart` schedule. */
  'scheduled',
] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export interface ExitRecord {
  code: number | null;
  signal: string | null;
  reason: ExitReason;
  /** For memory-limit and children-limit: what was measured (bytes or processes) against the limit. */
  limit: { measured: number; limit: number } | null;
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
  /** Without a health check, online this long counts as ready (`restart --wait`). */
  readyAfterMs: number;
  /** Give up (status errored) after this many restarts within restartWindowMs; null never gives up. */
  maxRestarts: number | null;
  restartWindowMs: number;
  maxMemoryBytes: number | null;
  maxChildren: number | null;
  /** Kernel memory cap (cgroup backends): null derives it from maxMemoryBytes, false means none. */
  hardMemoryBytes: number | false | null;
  /** Kernel task (thread) cap (cgroup backends): null derives it from maxChildren, false means none. */
  maxTasks: number | false | null;
  /** CPU quota in percent of one core (cgroup backends); null: none. */
  maxCpuPercent: number | null;
  /** 'rss' (default, cheap) or 'pss' (shared pages split between the processes that map them). */
  memoryMetric: MemoryMetric;
  /** Consecutive monitor ticks over a limit before it is enforced. */
  memoryBreachTicks: number;
  childrenBreachTicks: number;
  /** 'restart' the app, or first try 'kill-offender' (the largest or newest descendants) and keep it. */
  onLimit: LimitAction;
  /**
   * Reap automatically (default). False: processes that detached themselves from the tree (own session,
   * reparented to init) are deliberately left behind: not ended by stop/restart, not swept as orphans.
   */
  reap: boolean;
  /** Absolute paths whose changes restart the app (null: no watching). */
  watch: string[] | null;
  /** Extra ignore patterns (globs or paths); node_modules, .git, __pycache__, *.log and AGENTPM_HOME are always ignored. */
  ignoreWatch: string[];
  /** Quiet time after the last change before the restart. */
  watchDelayMs: number;
  /** Alert hooks of this app (the global ones in DaemonSettings apply too). */
  notify: NotifyHook[];
  health: HealthCheck | null;
  /** No new output on stdout or stderr for this long means hung: restart with reason `hung`. */
  hangTimeoutMs: number | null;
  /** Memory-pressure guard: the lowest priority is chosen first (then the largest tree). */
  priority: number;
  guardAction: GuardAction;
  /** Written to the root's /proc/<pid>/oom_score_adj at start, so the kernel and earlyoom pick the right victim. */
  oomScoreAdj: number | null;
  /** Apps that must be ready before this one starts (and that stop after it). */
  dependsOn: string[];
  /** Restarted on this schedule; null: never. */
  cronRestart: CronRestart | null;
  /** How the log relay rotates this app's log files. */
  logs: LogPolicy;
}

export interface CronRestart {
  /** A cron expression (5 fields, or 6 with seconds first), as croner reads it. */
  schedule: string;
  /** An IANA time zone such as 'Europe/Berlin'; null: the daemon's local time. */
  timezone: string | null;
}

/** Rotation of an app's log files by the relay (see logs/relay/). */
export interface LogPolicy {
  /** The current file is rotated before a line would take it past this many bytes. */
  maxSizeBytes: number;
  /** Rotated files kept (`.1` … `.keep`); older ones are deleted. 0 keeps none. */
  keep: number;
  /** Rotated files are gzipped (`.N.gz`), in the background. */
  compress: boolean;
}

export type LogStream = 'out' | 'err';

/**
 * A definition as the CLI sends it and `show` returns it: without the environment it starts from, which a
 * start request carries once for all its apps (see `start`) and which is never shown.
 */
export type AppDefinition = Omit<AppSpec, 'baseEnv'>;

/** What alerting can be subscribed to: a stable vocabulary over the event stream. */
export const NOTIFY_KINDS = [
  'crash',
  'oom-killed',
  'killed-by-signal',
  'limit-restart',
  'backoff',
  'errored',
  'health-failed',
  'hung',
  'memory-pressure',
  'orphans-reaped',
  'scheduled-restart',
] as const;
export type NotifyKind = (typeof NOTIFY_KINDS)[number];

export interface NotifyHook {
  /** A shell command; the event JSON arrives on stdin, key fields in AGENTPM_EVENT_* variables. */
  command: string | null;
  /** A URL the event JSON is POSTed to (retried with backoff). */
  webhook: string | null;
  /** null: every kind. */
  events: NotifyKind[] | null;
  timeoutMs: number;
}

export interface HealthCheck {
  /** Healthy when a GET answers 2xx or 3xx within the timeout. */
  http: string | null;
  /** Healthy when this shell command exits 0 within the timeout (run in the app's cwd). */
  command: string | null;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before a restart with reason `health-failed`. */
  retries: number;
  /** Failures during this time after a start do not count. */
  startPeriodMs: number;
}

export const GUARD_ACTIONS = ['restart', 'stop'] as const;
export type GuardAction = (typeof GUARD_ACTIONS)[number];

export interface GuardSettings {
  /** Act when MemAvailable falls below this many bytes... */
  minAvailableBytes: number | null;
  /** ...or below this percentage of MemTotal... */
  minAvailablePercent: number | null;
  /** ...or when /proc/pressure/memory "some avg10" rises above this. */
  pressureSomeAvg10: number | null;
}

export const MEMORY_METRICS = ['rss', 'pss'] as const;
export type MemoryMetric = (typeof MEMORY_METRICS)[number];
export const LIMIT_ACTIONS = ['restart', 'kill-offender'] as const;
export type LimitAction = (typeof LIMIT_ACTIONS)[number];

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
  /** Live descendants of the root (root excluded): the figure maxChildren limits. */
  children: number;
  /** CPU use of the whole tree over the last monitor tick, in percent of one core. */
  cpu: number;
  /** With a health check: 'starting' (in its start period), 'healthy' or 'unhealthy'; null without one. */
  health: HealthState | null;
  limits: AppLimits;
  lastExit: ExitRecord | null;
  /** When the current backoff ends (ISO 8601), if status is backoff. */
  nextStartAt: string | null;
  /** If status is waiting: the apps it waits for (its dependencies that are not ready); otherwise null. */
  waitingFor: string[] | null;
  /** Ready: healthy with a health check, otherwise online for its readyAfter. What dependents and `restart --wait` wait for. */
  ready: boolean;
  /**
   * What contains the app's processes: its live instance's backend (the daemon's, when it has none):
   * 'cgroup2', 'hybrid' or 'cgroup1' (a cgroup of its own), or 'proc' (inferred from /proc).
   */
  containment: BackendKind;
}

export interface TreeProcess {
  pid: number;
  ppid: number;
  rss: number;
  /** Percent of one core over the last monitor tick. */
  cpu: number;
  cmd: string;
}

export interface LogStreamInfo {
  path: string;
  /** Bytes of the current file. */
  size: number;
  /** Bytes of the current file and every rotated one. */
  totalSize: number;
  /** Rotated files present (`.N` or `.N.gz`). */
  rotatedFiles: number;
  /** Lines the relay dropped because the disk was full (since the relay started); null: no relay answered. */
  dropped: number | null;
}

export interface AppLogInfo {
  policy: LogPolicy;
  /** False when the current instance writes its files directly (the relay could not be used): then they grow unrotated. */
  rotated: boolean;
  /** Why the current instance's logs are not rotated, or null. */
  notRotatedWhy: string | null;
  out: LogStreamInfo;
  err: LogStreamInfo;
}

export interface AppDetail extends AppSummary {
  instance: string | null;
  definition: AppDefinition;
  logs: { out: string; err: string };
  logFiles: AppLogInfo;
  tree: TreeProcess[];
  /** Recent exits, newest first. */
  exits: ExitRecord[];
  /** The next restart by its cronRestart schedule (ISO 8601), or null. */
  nextScheduledRestart: string | null;
}

export interface DaemonStatus {
  pid: number;
  version: string;
  protocol: number;
  uptimeMs: number;
  home: string;
  apps: number;
  /** Set when a service manager runs the daemon (e.g. 'systemd'): replacing it then goes through that manager. */
  supervisedBy: string | null;
  /** The daemon's own resident memory, in bytes. */
  rss: number;
  /** The V8 heap in use, in bytes (the soak watches it for leaks). */
  heapUsed: number;
  /** The V8 heap committed (what RSS holds for it), in bytes. */
  heapTotal: number;
  /** Memory held outside the V8 heap by JavaScript objects (Buffers), in bytes. */
  external: number;
  tickMs: number;
  /** What the recent monitor ticks cost (one /proc pass, attribution, figures, limits). */
  tickCost: TickCost;
  machine: MachineMemory;
  /** The Prometheus endpoint, when configured (see MetricsSettings); null when off. */
  metrics: MetricsStatus | null;
  /** The home's log relay, or null with the reason in relayProblem. */
  relay: RelayStatus | null;
  relayProblem: string | null;
  /** Live instances writing their log files directly, unrotated, and why. */
  unrotated: { app: string; instance: string; why: string }[];
  /** The containment backend, why it was chosen, and how to get a better one. */
  containment: ContainmentInfo;
}

export interface MetricsStatus {
  listen: string;
  /** Where it is served (`http://127.0.0.1:9464/metrics`), or null while it is not. */
  url: string | null;
  /** Why it is not served (the port is in use...), or null. */
  problem: string | null;
}

export interface TickCost {
  /** Ticks measured (the most recent ones, at most 120). */
  samples: number;
  medianMs: number;
  maxMs: number;
  /** Processes on the machine at the last tick: what a tick's cost grows with. */
  processes: number;
}

export type Target = { all: true } | { names: string[] };

/**
 * The daemon's event stream: every state transition, exit, limit breach, backoff and give-up. Kept in
 * a bounded on-disk log and pushed to subscribers; the CLI and the TUI render these, and nothing else.
 */
export const EVENT_TYPES = [
  'state',
  'spawn',
  'exit',
  'adopt',
  'leftovers-killed',
  'limit-breach',
  'offender-killed',
  'orphans-reaped',
  'backoff',
  'give-up',
  'daemon',
  /** reason 'healthy' | 'unhealthy' | 'failed' (data: consecutive failures, message). */
  'health',
  /** The memory-pressure guard acted (reason memory-pressure; data: available, victim) or memory recovered. */
  'guard',
  /** An alert hook failed (data: hook, message); supervision goes on. */
  'notify-failed',
  /** reason 'ready' (watching; data: paths), 'restart' (a file change restarts the app; data: changes, files) or 'error' (data: message). */
  'watch',
  /** The log relay: reason 'started', 'lost' (it died; a new one is started), 'replaced' (another version), 'unavailable' (logs written directly, unrotated). */
  'relay',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface AgentEvent {
  type: EventType;
  app: string | null;
  instance: string | null;
  /** ISO 8601 */
  at: string;
  reason: string | null;
  data: Record<string, unknown>;
}

/** Why a process is an orphan. */
export const ORPHAN_REASONS = [
  /** Tagged with an instance of a registered app that is no longer its live instance. */
  'instance-ended',
  /** Tagged with an app this home's registry does not have (deleted, or never registered). */
  'app-unknown',
  /** Not tagged: orphaned (parent is init or a subreaper) and its command matched --match. */
  'unmanaged-match',
] as const;
export type OrphanReason = (typeof ORPHAN_REASONS)[number];

export interface OrphanInfo {
  pid: number;
  ppid: number;
  /** Identity as listed: a later kill is refused if the pid then has another start time. */
  startTime: number;
  app: string | null;
  instance: string | null;
  home: string | null;
  startedAt: string;
  ageMs: number;
  rss: number;
  cmd: string;
  why: OrphanReason;
  /** Listed because it descends from this orphan (it did not qualify by itself), or null. */
  via: number | null;
}

export interface UnmanagedReap {
  /** A regular expression the command line must match. */
  match: string;
  olderThanMs: number;
}

/** One process for its whole life: a reused pid has a later start time (clock ticks since boot). */
export interface ProcessRef {
  pid: number;
  startTime: number;
}

export interface ReapOptions {
  app: string | null;
  dryRun: boolean;
  /** Also processes of this user's other AGENTPM_HOMEs, those without a live daemon (which answers for its own). */
  allHomes: boolean;
  unmanaged: UnmanagedReap | null;
  /** Only these processes (as listed earlier, pid + start time), if they are still orphans. */
  only: ProcessRef[] | null;
  graceMs: number;
  /**
   * The process asking (the CLI), never listed nor ended, nor its ancestors. The daemon cannot read a
   * socket peer's pid, so the request names it, and the daemon refuses a claim /proc does not confirm.
   */
  caller: ProcessRef;
}

export interface ReapResult {
  /** True when the daemon did it; false when the CLI did it alone because no daemon was running. */
  daemon: boolean;
  dryRun: boolean;
  found: OrphanInfo[];
  /** Processes that were ended (0 on a dry run). */
  ended: number;
  /** Processes still alive after SIGKILL (stuck in the kernel). */
  survivors: number;
  /** Listed processes that were no longer the same process or no longer orphans: left alone. */
  skipped: { pid: number; startTime: number; why: string }[];
}

export interface DaemonSettings {
  /** Period of the automatic sweep for orphans, ms. */
  reapIntervalMs: number;
  /** Unmanaged patterns swept periodically (opt-in, from a config file's top-level `reap`). */
  unmanaged: UnmanagedReap[];
  /** Alert hooks for every app. */
  notify: NotifyHook[];
  /** The memory-pressure guard; null is off (the default). */
  guard: GuardSettings | null;
  /** The Prometheus endpoint; null is off (the default). */
  metrics: MetricsSettings | null;
}

/**
 * Where the daemon serves its metrics (HTTP, Prometheus text format, no authentication). `listen` is
 * `HOST:PORT` with an IP literal host (`[v6]:PORT` for IPv6); a host that is not loopback is refused
 * unless allowPublic is set (see config/metrics.ts).
 */
export interface MetricsSettings {
  listen: string;
  allowPublic: boolean;
}

/** A frame the daemon sends on its own, on a connection that subscribed. */
export interface EventPush {
  push: 'event';
  event: AgentEvent;
}

export type Request =
  | { id: number; type: 'hello'; protocol: number; version: string }
  | { id: number; type: 'status' }
  | { id: number; type: 'ls' }
  | { id: number; type: 'show'; name: string }
  /** `env`: the caller's environment, once for every app (each app starts from it, its own `env` over it). */
  | { id: number; type: 'start'; apps: AppDefinition[]; env: Record<string, string>; ifRunning: IfRunning }
  /** `agentpm start <name>` of an app the daemon knows: its saved definition and environment, unchanged. */
  | { id: number; type: 'start-saved'; names: string[]; ifRunning: 'refuse' | 'replace' }
  | { id: number; type: 'stop'; target: Target }
  | { id: number; type: 'restart'; target: Target }
  | { id: number; type: 'delete'; target: Target }
  | { id: number; type: 'signal'; name: string; signal: string }
  | { id: number; type: 'events'; app: string | null; limit: number }
  | { id: number; type: 'subscribe'; app: string | null }
  | { id: number; type: 'reap'; options: ReapOptions }
  | { id: number; type: 'notify-test'; app: string | null }
  | { id: number; type: 'save' }
  | { id: number; type: 'resurrect' }
  | { id: number; type: 'settings'; settings: Partial<DaemonSettings> }
  | { id: number; type: 'kill' }
  | { id: number; type: 'daemon-stop' }
  /** Empties the apps' log files (the current files truncated, rotated files deleted). */
  | { id: number; type: 'flush'; target: Target };

export type RequestType = Request['type'];

/**
 * What `start` does with an app that is already running: refuse (a script started twice), replace it
 * (--replace), or apply a config: restart it only if its definition changed.
 */
export type IfRunning = 'refuse' | 'replace' | 'apply';

export interface StartResult extends ActionResult {
  started: string[];
  /** Running apps whose definition changed: restarted with the new one. */
  restarted: string[];
  /** Running apps whose definition is the same: left alone. */
  unchanged: string[];
}

export interface NotifyTestResult {
  /** One entry per hook the sample event went through. */
  deliveries: { hook: string; ok: boolean; message: string }[];
}

export interface SaveResult {
  file: string;
  apps: string[];
}

export interface ResurrectResult {
  file: string;
  started: string[];
  /** Already running (or starting): not started twice. */
  skipped: string[];
}

export interface ActionResult {
  /** Apps the request acted on, in order. */
  apps: string[];
}

export interface ResultMap {
  hello: { version: string; protocol: number; pid: number };
  status: DaemonStatus;
  ls: AppSummary[];
  show: AppDetail;
  start: StartResult;
  'start-saved': StartResult;
  stop: ActionResult;
  restart: ActionResult;
  delete: ActionResult;
  signal: ActionResult;
  events: AgentEvent[];
  subscribe: Record<string, never>;
  reap: ReapResult;
  'notify-test': NotifyTestResult;
  save: SaveResult;
  resurrect: ResurrectResult;
  settings: DaemonSettings;
  kill: ActionResult;
  'daemon-stop': Record<string, never>;
  flush: FlushResult;
}

export interface FlushResult extends ActionResult {
  /** Who emptied the files: the relay (which owns them), or the daemon when no relay ran. */
  by: 'relay' | 'daemon';
}

/**
 * The log relay's control channel: a 0600 Unix socket in the home (relay.sock), newline-delimited JSON
 * as the daemon's socket. The daemon sends `hello` first; the relay answers every request `{id, ok,
 * result | error}`. The relay owns the apps' log files; the daemon tells it which FIFOs to read
 * (`attach`) and how to rotate each app's files (`policy`).
 */
export type RelayRequest =
  | { id: number; type: 'hello'; version: string }
  /** Paths of FIFOs in the home's run directory, named as logs/fifo.ts says; the answer comes once they are read. */
  | { id: number; type: 'attach'; fifos: string[] }
  /** Every app's policy; apps not named keep theirs. */
  | { id: number; type: 'policy'; policies: Record<string, LogPolicy> }
  /** null: every app's files. */
  | { id: number; type: 'flush'; apps: string[] | null }
  | { id: number; type: 'status' }
  /** Another version takes over: write what was read, close everything, exit (the FIFOs stay for the next relay). */
  | { id: number; type: 'hand-over' }
  /** The daemon leaves for good (`agentpm kill`): exit as soon as no FIFO is attached. */
  | { id: number; type: 'retire' };

export interface RelayStreamStatus {
  app: string;
  stream: LogStream;
  /** FIFOs (instances) writing to this stream now. */
  attached: number;
  /** Lines dropped on a full disk since the relay started. */
  dropped: number;
  path: string;
}

export interface RelayStatus {
  pid: number;
  startTime: number | null;
  version: string;
  /** FIFOs read now (two per instance). */
  fifos: number;
  /** Apps with at least one FIFO attached. */
  apps: number;
  rss: number;
  streams: RelayStreamStatus[];
}

export interface RelayResultMap {
  hello: { version: string; pid: number; startTime: number | null };
  attach: { attached: number };
  policy: Record<string, never>;
  flush: { apps: string[] };
  status: RelayStatus;
  'hand-over': Record<string, never>;
  retire: Record<string, never>;
}

export type RelayResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export type Response =
  | { id: number | null; ok: true; result: unknown }
  | { id: number | null; ok: false; error: ErrorPayload };

export type ServerMessage = Response | EventPush;

/** What a caller sends: a request without its id, which the client assigns. */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;
