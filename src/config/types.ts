/**
 * What users write, in `ecosystem.config.ts` or on the command line. Sizes and durations may be strings
 * ('512M', '10s') or numbers (bytes, ms). Every field but `script` is optional; defaults are in
 * defaults.ts and in the README.
 */
export type Size = string | number;
export type Duration = string | number;
export type SignalName = `SIG${string}`;

export interface AppConfig {
  /** Unique name; defaults to the script's file name without its extension. */
  name?: string;
  /** Path to the script (relative to the config file), or a command found on PATH. */
  script: string;
  args?: string | string[];
  /** Working directory; defaults to the config file's directory. */
  cwd?: string;
  /** 'node', 'tsx', 'python3', 'bash', 'none' (execute directly) or any program; by extension if unset. */
  interpreter?: string;
  interpreterArgs?: string[];
  /** Added to the environment of the command that started the app. */
  env?: Record<string, string | number | boolean>;
  /**
   * Named environments (PM2 style): `env_production: { LOG_LEVEL: 'warn' }` is merged over `env` when
   * started with `agentpm start <config> --env production`.
   */
  [environment: `env_${string}`]: Record<string, string | number | boolean> | undefined;
  /** Signal for a graceful stop (default SIGTERM). */
  stopSignal?: SignalName;
  /** Grace between the stop signal and SIGKILL for the whole tree (default '10s'). */
  killTimeout?: Duration;
  /** Restart when the app exits by itself (default true). */
  autorestart?: boolean;
  /** First restart delay; doubles for each unstable exit (default '1s'). */
  restartDelay?: Duration;
  /** Cap of the restart delay (default '60s'). */
  maxRestartDelay?: Duration;
  /** A run this long is stable and resets the backoff (default '30s'). */
  minUptime?: Duration;
  /** Without a health check, online this long counts as ready for `restart --wait` (default '3s'). */
  readyAfter?: Duration;
  /** Give up (errored) after this many restarts within restartWindow (default: never). */
  maxRestarts?: number;
  restartWindow?: Duration;
  /** Whole-tree memory limit, e.g. '1.5G'. */
  maxMemory?: Size;
  /** Live descendants of the root allowed (root excluded). */
  maxChildren?: number;
  /**
   * Kernel memory cap of the whole tree under a cgroup backend (OOM kill inside the app's own cgroup), for
   * spikes between two monitor ticks: default 1.25 × maxMemory, never below it; false for none.
   */
  hardMemory?: Size | false;
  /**
   * Kernel cap of tasks (threads, not processes) of the whole tree under a cgroup backend: a fork storm stops
   * there. Default derived from maxChildren (the root's threads + 16 per child + 64); false for none.
   */
  maxTasks?: number | false;
  /** CPU quota of the whole tree under a cgroup backend: '150%' of one core, or a number of cores (1.5). */
  maxCpu?: string | number;
  /** 'rss' (default) or 'pss' (shared pages divided among the processes sharing them; costs a read per process per tick). */
  memoryMetric?: 'rss' | 'pss';
  /** Consecutive monitor ticks over maxMemory before acting (default 2). */
  memoryBreachTicks?: number;
  /** Consecutive monitor ticks over maxChildren before acting (default 1). */
  childrenBreachTicks?: number;
  /** 'restart' (default), or 'kill-offender': end the largest (memory) or newest (children) descendants and keep the agent; restart if the breach persists. */
  onLimit?: 'restart' | 'kill-offender';
  /**
   * true (default): whatever the app leaves behind is ended, and its orphans are swept. false: for agents
   * that deliberately leave daemons behind, processes that detached themselves (own session, reparented
   * to init) survive stops and restarts and are not swept (`agentpm reap` by hand still finds them).
   */
  reap?: boolean;
  /** Restart on file changes: true watches cwd; or a list of paths (relative to cwd). */
  watch?: boolean | string[];
  /** Added to the ignores that always apply (node_modules, .git, __pycache__, *.log, the agentpm home), never replacing them. */
  ignoreWatch?: string[];
  /** Quiet time after the last change before restarting (default '1s'). */
  watchDelay?: Duration;
  /** Alert hooks for this app's events (the config's top-level `notify` applies to every app). */
  notify?: NotifyConfig | NotifyConfig[];
  /** Restarted with reason `health-failed` after `retries` consecutive failures. */
  health?: { http?: string; command?: string; interval?: Duration; timeout?: Duration; retries?: number; startPeriod?: Duration };
  /** No new output on stdout/stderr for this long means hung: restarted with reason `hung`. */
  hangTimeout?: Duration;
  /** Memory-pressure guard: lower priority is chosen first (default 0), then the larger tree. */
  priority?: number;
  /** What the guard does to this app: 'restart' (default) or 'stop'. */
  guardAction?: 'restart' | 'stop';
  /** Written to the root's oom_score_adj (-1000..1000): higher is killed first by the kernel and earlyoom. */
  oomScoreAdj?: number;
  /**
   * Apps of the same config that must be ready (healthy, or online for their readyAfter) before this one
   * starts; `stop all` stops this one first. Until they are ready it is `waiting`.
   */
  dependsOn?: string[];
  /**
   * Restart on a schedule: a cron expression ('0 4 * * *': 04:00 every day; six fields put seconds first),
   * in the daemon's local time, or `{ schedule, timezone: 'Europe/Berlin' }`.
   */
  cronRestart?: string | { schedule: string; timezone?: string };
  /** Rotation of this app's log files (default { maxSize: '10M', keep: 5, compress: false }; a config's top-level `logs` is the default for its apps). */
  logs?: LogsConfig;
}

export interface LogsConfig {
  /** The current file is rotated before it would pass this size (default '10M', at least '1K'). */
  maxSize?: Size;
  /** Rotated files kept per stream, 0 to 1000 (default 5). */
  keep?: number;
  /** Gzip rotated files (default false). */
  compress?: boolean;
}

export type NotifyKind =
  | 'crash'
  | 'oom-killed'
  | 'killed-by-signal'
  | 'limit-restart'
  | 'backoff'
  | 'errored'
  | 'health-failed'
  | 'hung'
  | 'memory-pressure'
  | 'orphans-reaped'
  | 'scheduled-restart';

export interface NotifyConfig {
  /** Shell command (`sh -c`): event JSON on stdin, AGENTPM_EVENT_TYPE/APP/REASON/AT/INSTANCE/MESSAGE in its environment. */
  command?: string;
  /** POST the event JSON here (retried with backoff on network errors, 5xx and 429). */
  webhook?: string;
  /** Which kinds (default: all). */
  events?: NotifyKind[];
  /** Bounds each delivery (default '10s'): a command is then killed with its process group; a webhook's retries fit within it. */
  timeout?: Duration;
}

export interface ReapConfig {
  /** Period of the daemon's automatic orphan sweep (default '30s'). */
  interval?: Duration;
  /** Opt-in: orphaned processes not started by agentpm, ended when their command matches. */
  unmanaged?: { match: string; olderThan?: Duration }[];
}

export interface EcosystemConfig {
  apps: AppConfig[];
  reap?: ReapConfig;
  /** Alert hooks for every app. */
  notify?: NotifyConfig | NotifyConfig[];
  /** Memory-pressure guard, off by default: acts before earlyoom and the kernel OOM killer do. */
  guard?: { minAvailable?: Size; pressure?: { someAvg10: number } };
  /**
   * Prometheus metrics served by the daemon over HTTP, off by default. `listen` defaults to
   * '127.0.0.1:9464'; an address that is not loopback needs `allowPublic: true` (the endpoint has no
   * authentication). `false` turns it off; leaving it out keeps what the daemon has.
   */
  metrics?: boolean | string | { listen?: string; allowPublic?: boolean };
  /** Log rotation for every app of this config that sets no `logs` of its own (fields it sets win). */
  logs?: LogsConfig;
}
