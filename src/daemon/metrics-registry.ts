/**
 * The metrics themselves, with prom-client. Loaded only once the endpoint is on (see metrics.ts): a
 * daemon without metrics never loads prom-client.
 *
 * Every value is read at scrape time from one snapshot of the daemon's state (collect callbacks), never
 * kept up to date on each tick: a daemon nobody scrapes does no work for its metrics. Series of an app
 * exist while the app does: a deleted app's series go with it.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { APP_STATUSES, EXIT_REASONS, type AppSummary, type MachineMemory, type TickCost } from '../protocol.js';

/** What one scrape reads. */
export interface MetricsSnapshot {
  apps: AppSummary[];
  /** Exits of an app by reason, and limit breaches by limit, since the daemon started. */
  exits(app: string, reason: string): number;
  breaches(app: string, reason: string): number;
  tickCost: TickCost;
  tickMs: number;
  machine: MachineMemory;
  daemon: { version: string; startTimeSeconds: number };
}

export const BREACH_REASONS = ['memory-limit', 'children-limit'] as const;
/** `unknown`: no health check, or no instance running for it to check. */
export const HEALTH_STATES = ['healthy', 'unhealthy', 'starting', 'unknown'] as const;

export interface MetricsRenderer {
  readonly contentType: string;
  render(snapshot: MetricsSnapshot): Promise<string>;
}

/** `psi`: the kernel has /proc/pressure (it does not come and go while the daemon runs). */
export function createRenderer(options: { psi: boolean }): MetricsRenderer {
  const registry = new Registry();
  let current: MetricsSnapshot | null = null;
  // One render at a time: the collect callbacks read `current`.
  let queue: Promise<unknown> = Promise.resolve();

  const gauge = (name: string, help: string, labelNames: readonly string[], fill: (metric: Gauge, snapshot: MetricsSnapshot) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        if (current) fill(this, current);
      },
    });
  };
  // A counter whose value is kept elsewhere (the app's restart count, the event counts): set at scrape time.
  const counter = (name: string, help: string, labelNames: readonly string[], fill: (metric: Counter, snapshot: MetricsSnapshot) => void): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        if (current) fill(this, current);
      },
    });
  };
  const perApp = (fill: (metric: Gauge, app: AppSummary) => void) => (metric: Gauge, snapshot: MetricsSnapshot): void => {
    for (const app of snapshot.apps) fill(metric, app);
  };

  gauge('agentpm_app_status', 'The app\'s status: 1 for the one it is in, 0 for the others (as `agentpm ls` shows it).', ['app', 'status'], perApp((metric, app) => {
    for (const status of APP_STATUSES) metric.set({ app: app.name, status }, app.status === status ? 1 : 0);
  }));
  counter('agentpm_app_restarts_total', 'Restarts of the app (automatic and by hand), the count `agentpm ls` shows; kept across daemon restarts.', ['app'], (metric, snapshot) => {
    for (const app of snapshot.apps) metric.inc({ app: app.name }, app.restarts);
  });
  counter('agentpm_app_exits_total', 'Ends of the app\'s instances by reason (crashed, oom-killed, memory-limit, stopped...), since the daemon started.', ['app', 'reason'], (metric, snapshot) => {
    for (const app of snapshot.apps) for (const reason of EXIT_REASONS) metric.inc({ app: app.name, reason }, snapshot.exits(app.name, reason));
  });
  counter('agentpm_app_limit_breaches_total', 'Limit breaches acted on (a restart or an offender killed), by limit, since the daemon started.', ['app', 'reason'], (metric, snapshot) => {
    for (const app of snapshot.apps) for (const reason of BREACH_REASONS) metric.inc({ app: app.name, reason }, snapshot.breaches(app.name, reason));
  });
  gauge('agentpm_app_memory_bytes', 'Memory of the app\'s whole process tree (RSS, or PSS with memoryMetric: pss), at the last scan.', ['app'], perApp((metric, app) => {
    metric.set({ app: app.name }, app.memory);
  }));
  gauge('agentpm_app_memory_limit_bytes', 'The app\'s whole-tree memory limit (maxMemory); absent without one.', ['app'], perApp((metric, app) => {
    if (app.limits.memory !== null) metric.set({ app: app.name }, app.limits.memory);
  }));
  gauge('agentpm_app_processes', 'Live processes of the app\'s tree, root included.', ['app'], perApp((metric, app) => {
    metric.set({ app: app.name }, app.processes);
  }));
  gauge('agentpm_app_children', 'Live descendants of the app\'s root (root excluded): what maxChildren limits.', ['app'], perApp((metric, app) => {
    metric.set({ app: app.name }, app.children);
  }));
  gauge('agentpm_app_children_limit', 'The app\'s limit on live descendants (maxChildren); absent without one.', ['app'], perApp((metric, app) => {
    if (app.limits.children !== null) metric.set({ app: app.name }, app.limits.children);
  }));
  gauge('agentpm_app_cpu_usage_ratio', 'CPU use of the whole tree over the last monitor tick, in cores (1 = one core busy; ls shows it as a percent).', ['app'], perApp((metric, app) => {
    metric.set({ app: app.name }, app.cpu / 100);
  }));
  gauge('agentpm_app_uptime_seconds', 'How long the current instance has been online; absent while the app is not online.', ['app'], perApp((metric, app) => {
    if (app.uptimeMs !== null) metric.set({ app: app.name }, msToSeconds(app.uptimeMs));
  }));
  gauge('agentpm_app_health', 'The health check\'s verdict: 1 for the current state, 0 for the others (unknown: no check, or nothing running).', ['app', 'state'], perApp((metric, app) => {
    const state = app.health ?? 'unknown';
    for (const each of HEALTH_STATES) metric.set({ app: app.name, state: each }, state === each ? 1 : 0);
  }));

  gauge('agentpm_daemon_info', 'The daemon\'s version (always 1).', ['version'], (metric, snapshot) => {
    metric.set({ version: snapshot.daemon.version }, 1);
  });
  gauge('agentpm_daemon_start_time_seconds', 'When the daemon started, in seconds since the epoch: the counters since the daemon started count from here.', [], (metric, snapshot) => {
    metric.set(snapshot.daemon.startTimeSeconds);
  });
  gauge('agentpm_daemon_resident_memory_bytes', 'The daemon\'s own resident memory.', [], (metric) => {
    metric.set(process.memoryUsage.rss());
  });
  gauge('agentpm_daemon_heap_used_bytes', 'The daemon\'s JavaScript heap in use.', [], (metric) => {
    metric.set(process.memoryUsage().heapUsed);
  });
  gauge('agentpm_daemon_heap_total_bytes', 'The daemon\'s JavaScript heap allocated.', [], (metric) => {
    metric.set(process.memoryUsage().heapTotal);
  });
  counter('agentpm_daemon_cpu_seconds_total', 'CPU time the daemon used (user and system).', [], (metric) => {
    const usage = process.cpuUsage();
    metric.inc((usage.user + usage.system) / 1e6);
  });
  gauge('agentpm_daemon_tick_interval_seconds', 'How often the monitor ticks (one /proc scan, the tree figures, the limits).', [], (metric, snapshot) => {
    metric.set(snapshot.tickMs / 1000);
  });
  gauge('agentpm_daemon_tick_median_seconds', 'The median cost of the recent monitor ticks (up to the last 120).', [], (metric, snapshot) => {
    metric.set(msToSeconds(snapshot.tickCost.medianMs));
  });
  gauge('agentpm_daemon_tick_max_seconds', 'The largest cost of the recent monitor ticks (up to the last 120).', [], (metric, snapshot) => {
    metric.set(msToSeconds(snapshot.tickCost.maxMs));
  });
  gauge('agentpm_machine_processes', 'Processes on the machine at the last monitor tick: what a tick\'s cost grows with.', [], (metric, snapshot) => {
    metric.set(snapshot.tickCost.processes);
  });
  gauge('agentpm_machine_memory_total_bytes', 'The machine\'s memory (MemTotal).', [], (metric, snapshot) => {
    metric.set(snapshot.machine.totalBytes);
  });
  gauge('agentpm_machine_memory_available_bytes', 'Memory available for new work without swapping (MemAvailable): what a memory guard watches.', [], (metric, snapshot) => {
    metric.set(snapshot.machine.availableBytes);
  });
  if (options.psi) gauge('agentpm_machine_memory_pressure_some_avg10_ratio', 'Share of the last 10 s in which some task stalled on memory (PSI "some avg10"; guard.pressure.someAvg10 is this in percent); absent on kernels without PSI.', [], (metric, snapshot) => {
    metric.set((snapshot.machine.pressureSomeAvg10 ?? 0) / 100);
  });

  return {
    contentType: registry.contentType,
    render(snapshot: MetricsSnapshot): Promise<string> {
      const run = queue.then(async () => {
        current = snapshot;
        try {
          return await registry.metrics();
        } finally {
          current = null;
        }
      });
      queue = run.catch(() => undefined);
      return run;
    },
  };
}

/** Exact to the microsecond, without binary fractions such as 0.037829999999999996 in the text. */
function msToSeconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}
