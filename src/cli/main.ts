/**
 * The agentpm command line. Each command is a thin request to the daemon and a rendering of its answer;
 * the daemon is started on demand. Rarely used, heavy parts (config loading through tsx, log following)
 * are imported lazily so that `agentpm ls` starts about as fast as node itself.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { AgentpmError } from '../errors.js';
import { homePaths, resolveHome, type HomePaths } from '../home.js';
import type { AgentEvent, RequestBody, ResultMap, Target } from '../protocol.js';
import { VERSION } from '../version.js';
import { DaemonClient } from './client.js';
import { connectIfRunning, stopDaemon, waitForExit } from './daemon-control.js';
import { describeEvent, renderContainment, renderDetail, renderList } from './render.js';
import { formatBytes } from '../config/units.js';
import { metricsFlag } from '../config/metrics.js';
import { normalizeSignal, wholeNumberFlag } from './flags.js';
import type { StartOptions } from './start.js';
import type { KubernetesExportOptions, SystemdExportOptions } from './export.js';
import { exitQuietlyOnEpipe } from './epipe.js';

/** What `events` can ask for at once (the daemon keeps fewer in memory anyway). */
const MAX_EVENTS_QUERY = 10_000;
/** Enough for any log agentpm keeps; bounded so a typo cannot ask for 10^20 lines. */
const MAX_LOG_LINES = 10_000_000;

let resolvedPaths: HomePaths | undefined;
/**
 * Resolved (and checked) on first use rather than at load, so that `--help` works under any
 * AGENTPM_HOME and a refused home is reported like every other error.
 */
function paths(): HomePaths {
  resolvedPaths ??= homePaths(resolveHome());
  return resolvedPaths;
}

exitQuietlyOnEpipe();

async function withDaemon<T>(autostart: boolean, use: (client: DaemonClient) => Promise<T>): Promise<T> {
  const client = await DaemonClient.connect(paths(), { autostart });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

function call<B extends RequestBody>(body: B): Promise<ResultMap[B['type']]> {
  return withDaemon(true, (client) => client.request(body));
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function targetOf(names: string[]): Target {
  if (names.length === 1 && names[0] === 'all') return { all: true };
  return { names };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const program = new Command();
program
  .name('agentpm')
  .description('A process manager for AI agents: whole process trees, per-tree limits, restarts with backoff, no orphans.')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');

program
  .command('start')
  .description('start every app of a config file, a script, a known app by name, or a command on PATH')
  .argument(
    '<config|script|name|command>',
    'in this order: a config file, an existing file (a script), the name of an app agentpm knows (its saved definition), a command on PATH or a command string ("npm run dev")',
  )
  .argument('[args...]', 'arguments for the script (after --)')
  .option('-n, --name <name>', "app name (default: the script file name, or a command's program)")
  .option('--cwd <dir>', 'working directory (default: the current directory)')
  .option('--env <NAME=value|name>', 'script: set an environment variable (repeatable); config file: use the named environment (env_<name>)', collect, [])
  .option('--only <names>', 'config file: start only these apps (comma-separated)')
  .option('--interpreter <program>', "interpreter: node, tsx, python3, bash, none (execute directly), or any program")
  .option('--interpreter-args <args>', 'arguments for the interpreter')
  .option('--kill-timeout <duration>', 'grace between the stop signal and SIGKILL (default 10s)')
  .option('--stop-signal <signal>', 'signal for a graceful stop (default SIGTERM)')
  .option('--no-autorestart', 'do not restart the app when it exits by itself')
  .option('--restart-delay <duration>', 'first restart delay, doubled for each unstable exit (default 1s)')
  .option('--max-restarts <n>', 'give up (errored) after n restarts within the restart window')
  .option('--max-memory <size>', "whole-tree memory limit, e.g. '1.5G'")
  .option('--max-children <n>', 'limit of live descendants of the root (fork storms are frozen and killed)')
  .option('--max-tasks <n>', 'kernel cap of tasks (threads) of the whole tree under a cgroup backend (pids.max); default derived from --max-children')
  .option('--max-cpu <share>', "CPU quota of the whole tree under a cgroup backend: '150%' of one core, or cores (1.5)")
  .option('--on-limit <action>', "'restart' (default) or 'kill-offender' (end the largest/newest descendants first)")
  .option('--replace', 'if the app is running, stop its whole tree and start it again (with the new definition, if options give one)')
  .option('--json', 'print the app list as JSON')
  // PM2's cluster mode, asked for by habit: refused with the reason and what to do instead.
  .addOption(new Option('-i, --instances <n>').hideHelp())
  .addHelpText(
    'after',
    '\nExamples:\n  agentpm start bot.ts --name bot --kill-timeout 30s\n  agentpm start bot                           # a stopped app, by name, with its saved definition\n  agentpm start worker.py -- --queue high\n  agentpm start "npm run dev" --name web       # a command string, split as a shell would (no shell runs)\n  agentpm start ecosystem.config.ts --env production --only bot,worker\n  agentpm start ecosystem.config.js           # a PM2 ecosystem file works too',
  )
  .action(async (target: string, args: string[], options: StartOptions & { instances?: string }) => {
    if (options.instances !== undefined) {
      const { shellQuote } = await import('../config/command-line.js');
      throw new AgentpmError(
        'invalid-argument',
        `-i/--instances (PM2's cluster mode) is not supported: it runs copies of a stateless server behind one port, while an agent keeps its ` +
          `state in its own process tree. Start each copy as an app of its own: agentpm start ${shellQuote(target)} --name <name>-2, or list them in a config.`,
      );
    }
    const { planStart, executeStart } = await import('./start.js');
    let client: DaemonClient | null = null;
    const connect = async (): Promise<DaemonClient> => (client ??= await DaemonClient.connect(paths(), { autostart: true }));
    let result: ResultMap['start'];
    let list: ResultMap['ls'];
    let saved = false;
    try {
      const plan = await planStart(target, args, options, connect);
      saved = plan.kind === 'saved';
      const daemon = await connect();
      result = await executeStart(plan, options, daemon);
      list = await daemon.request({ type: 'ls' });
      if (plan.kind === 'config' && plan.loaded.settings?.metrics) {
        const problem = (await daemon.request({ type: 'status' })).metrics?.problem;
        if (problem) process.stderr.write(`agentpm: warning: metrics are not served: ${problem}\n`);
      }
    } finally {
      (client as DaemonClient | null)?.close();
    }
    if (options.json) return printJson(list);
    if (result.restarted.length > 0) print(`${saved ? 'restarted (--replace)' : 'restarted with a changed definition'}: ${result.restarted.join(', ')}`);
    if (result.unchanged.length > 0) {
      // Unchanged apps are left as they are, which is not always running (a backoff, a start under way).
      const statusOf = (name: string): string => list.find((app) => app.name === name)?.status ?? 'unknown';
      print(`unchanged, left as they are: ${result.unchanged.map((name) => `${name} (${statusOf(name)})`).join(', ')}`);
    }
    print(renderList(list));
  });

for (const [verb, description] of [
  ['stop', 'stop apps: stop signal to every process of the tree, SIGKILL after the kill timeout'],
  ['delete', 'stop apps and remove them from the registry'],
] as const) {
  const command = program
    .command(verb)
    .description(description)
    .argument('<names...>', "app names, or 'all'")
    .option('--json', 'print the app list as JSON')
    .action(async (names: string[], options: { json?: boolean }) => {
      const list = await withDaemon(true, async (client) => {
        await client.request({ type: verb, target: targetOf(names) });
        return client.request({ type: 'ls' });
      });
      if (options.json) printJson(list);
      else print(renderList(list));
    });
  if (verb === 'delete') command.alias('del');
}

for (const verb of ['restart', 'reload'] as const) {
  program
    .command(verb)
    .description(
      verb === 'restart'
        ? 'stop each app completely (its whole tree), then start it again'
        : 'the same as restart: agents have no zero-downtime cluster mode, so each tree is stopped, then started',
    )
    .argument('<names...>', "app names, or 'all'")
    .option('--wait', 'wait until each app is ready (healthy, or online for its readyAfter, default 3s); exit 1 with a summary if any is not')
    .option('--wait-stable', 'wait longer: until each app has stayed up for its minUptime (the crash-loop window, default 30s)')
    .option('--timeout <duration>', 'with --wait: how long each app may take (default 60s)')
    .option('--parallel <n>', 'with --wait: apps restarted at once (default 1, so memory never doubles across all agents)')
    .option('--json', 'print the app list (or with --wait, the per-app summary) as JSON')
    .addHelpText('after', `
Example (an upgrade script):
  git pull && npm ci && agentpm ${verb} all --wait --timeout 2m || exit 1`)
    .action(async (names: string[], options: { wait?: boolean; waitStable?: boolean; timeout?: string; parallel?: string; json?: boolean }) => {
      if (options.wait || options.waitStable) {
        const { restartAndWait, renderWaitSummary } = await import('./restart-wait.js');
        const flags = { timeout: options.timeout, parallel: options.parallel, stable: options.waitStable === true };
        const summary = await withDaemon(true, (client) => restartAndWait(client, targetOf(names), flags));
        if (options.json) printJson(summary);
        else print(renderWaitSummary(summary));
        if (!summary.ok) process.exitCode = 1;
        return;
      }
      if (options.timeout || options.parallel) throw new AgentpmError('invalid-argument', '--timeout and --parallel go with --wait');
      const list = await withDaemon(true, async (client) => {
        await client.request({ type: 'restart', target: targetOf(names) });
        return client.request({ type: 'ls' });
      });
      if (options.json) printJson(list);
      else print(renderList(list));
    });
}

program
  .command('signal')
  .description("send a signal to an app's root process")
  .argument('<signal>', 'e.g. SIGUSR2 or USR2')
  .argument('<name>', 'app name')
  .action(async (signal: string, name: string) => {
    await call({ type: 'signal', name, signal: normalizeSignal(signal) });
    print(`sent ${normalizeSignal(signal)} to ${name}`);
  });

program
  .command('ls')
  .aliases(['list', 'status'])
  .description('list apps with their status and whole-tree figures')
  .option('--json', 'machine-readable output (a stable contract)')
  .action(async (options: { json?: boolean }) => {
    const list = await call({ type: 'ls' });
    if (options.json) printJson(list);
    else print(renderList(list));
  });

// PM2's JSON lists, asked for by habit: not aliases, because ls --json has fields of its own and a script
// reading PM2's (pm2_env.status, monit.memory) would get nothing rather than an error.
for (const verb of ['prettylist', 'jlist']) {
  program
    .command(verb, { hidden: true })
    .allowUnknownOption()
    .action(() => {
      throw new AgentpmError('invalid-argument', `${verb} is PM2's process list as JSON; agentpm's is \`agentpm ls --json\`, with fields of its own (see "ls --json" in the README)`);
    });
}

program
  .command('show')
  .aliases(['describe', 'info'])
  .description("an app's definition, status, process tree and recent exits")
  .argument('<name>', 'app name')
  .option('--json', 'machine-readable output')
  .action(async (name: string, options: { json?: boolean }) => {
    const detail = await call({ type: 'show', name });
    if (options.json) printJson(detail);
    else print(renderDetail(detail));
  });

program
  .command('logs')
  .description("print apps' logs in the order their lines arrived (read from the log files; the daemon is not involved)")
  .argument('[names...]', 'app names, or all (the default): every app with logs')
  .option('--lines <n>', 'the last n lines of each app, out and err merged (default 20; with --since, every line since then, up to 100000)')
  .option('-f, --follow', 'keep printing new lines (across rotation and flush; with no name, apps that start later too)')
  .option('-t, --timestamps', "prefix each line with its stamp in local time, YYYY-MM-DD HH:MM:SS.mmm ('-' for a line written without a stamp)")
  .option('--since <when>', 'only lines since then: a duration back from now (10m, 2h, 1d) or a local date/time (2026-11-29, 2026-11-29T10:00)')
  .option('--grep <regex>', 'only lines whose text matches this JavaScript regular expression')
  .addOption(new Option('--err', 'only stderr').conflicts('out'))
  .addOption(new Option('--out', 'only stdout'))
  .addHelpText(
    'after',
    '\nEach line is labelled "app | " (stderr: "app/err | ", red on a terminal) unless one stream of one app is shown.\n' +
      'Order: out and err interleave by arrival at the log relay; exact within one stream.',
  )
  .action(async (names: string[], options: { lines?: string; follow?: boolean; timestamps?: boolean; since?: string; grep?: string; err?: boolean; out?: boolean }) => {
    const { showLogs } = await import('./logs.js');
    const { parseSince } = await import('../logs/since.js');
    const lines = options.lines === undefined ? null : wholeNumberFlag('--lines', options.lines, 0, MAX_LOG_LINES);
    const streams = options.err ? (['err'] as const) : options.out ? (['out'] as const) : (['out', 'err'] as const);
    await showLogs(paths().home, {
      names,
      lines,
      follow: options.follow === true,
      streams: [...streams],
      timestamps: options.timestamps === true,
      since: options.since === undefined ? null : parseSince(options.since),
      grep: options.grep ?? null,
    });
  });

program
  .command('events')
  .description('the event stream: state changes, exits with reasons, limit breaches, backoffs, give-ups')
  .option('--app <name>', 'only this app')
  .option('--lines <n>', 'recent events to print first', '50')
  .option('-f, --follow', 'keep printing events as they happen')
  .option('--json', 'one JSON event per line')
  .action(async (options: { app?: string; lines: string; follow?: boolean; json?: boolean }) => {
    const limit = wholeNumberFlag('--lines', options.lines, 1, MAX_EVENTS_QUERY);
    const show = (event: AgentEvent): void => print(options.json ? JSON.stringify(event) : describeEvent(event));
    const client = await DaemonClient.connect(paths(), { autostart: true });
    try {
      const app = options.app ?? null;
      if (options.follow) {
        // Subscribe first, then print the backlog: an event in between is printed, never lost.
        const early: AgentEvent[] = [];
        client.onEvent = (event) => early.push(event);
        await client.request({ type: 'subscribe', app });
        const backlog = await client.request({ type: 'events', app, limit });
        const printed = new Set(backlog.map((event) => JSON.stringify(event)));
        backlog.forEach(show);
        early.filter((event) => !printed.has(JSON.stringify(event))).forEach(show);
        client.onEvent = show;
        await new Promise<void>((resolve) => {
          client.onClose = () => resolve();
        });
        // The daemon says why when it ends the stream itself (this client fell behind): show that.
        const why = client.closeError;
        if (why !== null && why.code !== 'daemon-unreachable') throw why;
        throw new AgentpmError('daemon-unreachable', 'the daemon went away; run the command again to follow the new one');
      }
      (await client.request({ type: 'events', app, limit })).forEach(show);
    } finally {
      client.close();
    }
  });

program
  .command('reap')
  .description('find orphaned agent processes and end them (TERM, grace, KILL)')
  .option('--dry-run', 'list what would be ended; end nothing')
  .option('--json', 'machine-readable output')
  .option('--app <name>', "only this app's orphans")
  .option('--unmanaged', 'processes not started by agentpm: orphaned (parent is init or a subreaper), needs --match')
  .option('--match <regex>', 'with --unmanaged: the command line must match this regular expression')
  .option('--older-than <duration>', 'with --unmanaged: only processes at least this old (default 1m)')
  .option('--all-homes', 'also processes of your other AGENTPM_HOMEs whose daemon is not running')
  .option('--pid <pid:start...>', 'only these, as listed by an earlier --dry-run --json (pid:startTime)')
  .option('--grace <duration>', 'time between SIGTERM and SIGKILL (default 5s)')
  .addHelpText(
    'after',
    `
Managed orphans are processes agentpm started (tagged with an AGENTPM_INSTANCE of this home) whose
instance is no longer live: it stopped, crashed or was replaced, or its app was deleted. The daemon also
reaps them by itself after every stop, restart and crash and every 30 s, except for apps with
\`reap: false\`. Unmanaged orphans were never agentpm's: leaked MCP servers of agent runs started by hand.
They are only looked for with --match, and never include the daemon, this command or their ancestors,
or another user's processes.

Exit status: 0 nothing found, 2 orphans found (and ended, unless --dry-run), 1 error.
Works without a running daemon (from the process table and registry.json) and says so.

Examples:
  agentpm reap --dry-run                          # list agentpm's orphans, end nothing
  agentpm reap --app bot                          # end the orphans of bot's old instances
  agentpm reap --unmanaged --match 'mcp-server|@modelcontextprotocol' --older-than 10m --dry-run
  agentpm reap --dry-run --json > list.json; agentpm reap --pid 4242:1234567   # review, then end exactly those`,
  )
  .action(async (options: { dryRun?: boolean; json?: boolean; app?: string; unmanaged?: boolean; match?: string; olderThan?: string; allHomes?: boolean; pid?: string[]; grace?: string }) => {
    const { runReap } = await import('./reap.js');
    process.exitCode = await runReap(paths(), options);
  });

program
  .command('monit')
  .description('live dashboard: apps, whole-tree memory and children, process trees, events, logs; keys act on the selected app')
  .action(async () => {
    // Loaded here so that no other command pays for blessed.
    const { runMonit } = await import('../tui/monit.js');
    await runMonit(paths());
  });

const notify = program.command('notify').description('alert hooks: commands and webhooks run on crashes, OOM kills, limit restarts, give-ups...');
notify
  .command('test')
  .description("send a sample event (marked as a test) through an app's hooks and the global ones; exit 1 if any delivery fails")
  .argument('[name]', 'app name (without one: the global hooks only)')
  .option('--json', 'machine-readable output')
  .action(async (name: string | undefined, options: { json?: boolean }) => {
    const { deliveries } = await call({ type: 'notify-test', app: name ?? null });
    if (options.json) printJson({ deliveries });
    else if (deliveries.length === 0) print(`no notify hooks${name ? ` for ${name}, and no global ones` : ' (global ones: the top-level `notify` of a config)'}; nothing was sent`);
    else for (const item of deliveries) print(`${item.ok ? 'ok    ' : 'FAILED'}  ${item.hook}: ${item.message}`);
    if (deliveries.length === 0 || deliveries.some((item) => !item.ok)) process.exitCode = 1;
  });

program
  .command('save')
  .description('snapshot the app list (definitions, and which should run) to AGENTPM_HOME/dump.json')
  .action(async () => {
    const { file, apps } = await call({ type: 'save' });
    print(`saved ${apps.length} app(s) to ${file}`);
  });

program
  .command('resurrect')
  .description('start the apps of the last `agentpm save` that should run; never a second tree of a running app')
  .action(async () => {
    const { started, skipped, file } = await call({ type: 'resurrect' });
    print(`from ${file}: started ${started.length > 0 ? started.join(', ') : 'nothing'}${skipped.length > 0 ? `; already running: ${skipped.join(', ')}` : ''}`);
  });

program
  .command('startup')
  .description('print (or --install) a systemd unit that starts the daemon at boot')
  .argument('<system>', "only 'systemd' for now")
  .option('--user', 'a user unit (~/.config/systemd/user), no root needed')
  .option('--install', 'write the unit file and print the commands that enable it')
  .option('--tasks-max <n>', 'TasksMax for the whole fleet (processes and threads of all agents)')
  .option('--memory-max <size>', "MemoryMax for the whole fleet, e.g. '12G'")
  .action(async (system: string, options: { user?: boolean; install?: boolean; tasksMax?: string; memoryMax?: string }) => {
    if (system !== 'systemd') throw new AgentpmError('invalid-argument', `unknown init system '${system}'; supported: systemd`);
    const { systemdUnit, installUnit, unitTasksMax, unitMemoryMax } = await import('./startup.js');
    const tasksMax = options.tasksMax === undefined ? null : unitTasksMax(options.tasksMax);
    const memoryMax = options.memoryMax === undefined ? null : unitMemoryMax(options.memoryMax);
    const unit = systemdUnit({ home: paths().home, user: options.user === true, tasksMax, memoryMax });
    if (!options.install) return print(unit);
    print(installUnit(unit, options.user === true));
  });

const exporter = program.command('export').description('systemd units or Kubernetes manifests for the apps of a config, for when another supervisor takes over');
exporter
  .command('systemd')
  .description('one service unit per app (secret-looking variables in a 0600 EnvironmentFile beside it)')
  .argument('<config>', 'a config file, loaded as `start` loads it')
  .option('--user', 'user units (systemctl --user): WantedBy=default.target, no User=')
  .option('--out <dir>', 'write the files there (default: print the units; secret values are never printed)')
  .option('--systemd-version <n>', "the target systemd: keys it lacks are left out (default: this machine's, else 252)")
  .option('--env <name>', "the named environment (each app's env_<name> over its env)")
  .option('--only <names>', 'these apps only (comma-separated)')
  .addHelpText('after', '\nExamples:\n  agentpm export systemd ecosystem.config.ts                 # print the units\n  agentpm export systemd ecosystem.config.ts --out ./units   # write them, and the 0600 env files')
  .action(async (config: string, options: SystemdExportOptions) => {
    const { exportSystemd } = await import('./export.js');
    await exportSystemd(config, options);
  });
exporter
  .command('kubernetes')
  .alias('k8s')
  .description('per app a Deployment (and a Secret for its secret-looking variables), for an image that holds the app')
  .argument('<config>', 'a config file, loaded as `start` loads it')
  .requiredOption('--image <image>', 'the image that holds the app (agentpm cannot build one), e.g. ghcr.io/me/bot:1.2')
  .option('--out <dir>', 'write the files there (default: print the manifests; Secrets are never printed)')
  .option('--env <name>', "the named environment (each app's env_<name> over its env)")
  .option('--only <names>', 'these apps only (comma-separated)')
  .addHelpText('after', '\nExample:\n  agentpm export kubernetes ecosystem.config.ts --image ghcr.io/me/bot:1.2 --out k8s && kubectl apply -f k8s/')
  .action(async (config: string, options: KubernetesExportOptions) => {
    const { exportKubernetes } = await import('./export.js');
    await exportKubernetes(config, options);
  });

program
  .command('kill')
  .description('stop every app, then the daemon')
  .action(async () => {
    const client = await connectIfRunning(paths());
    if (!client) return print('no daemon running');
    try {
      const { pid } = await client.request({ type: 'status' });
      const { apps } = await client.request({ type: 'kill' });
      await waitForExit(pid);
      print(`stopped ${apps.length} app(s); daemon stopped`);
    } finally {
      client.close();
    }
  });

program
  .command('flush')
  .description("empty an app's log files, or every app's: current files truncated, rotated files deleted")
  .argument('[app]', 'app name (default: every app)')
  .action(async (name: string | undefined) => {
    const client = await connectIfRunning(paths());
    if (client) {
      try {
        const result = await client.request({ type: 'flush', target: name === undefined ? { all: true } : { names: [name] } });
        print(`flushed the logs of ${result.apps.length} app(s)${result.apps.length > 0 ? `: ${result.apps.join(', ')}` : ''}`);
      } finally {
        client.close();
      }
      return;
    }
    const { flushWithoutDaemon } = await import('./flush.js');
    const apps = flushWithoutDaemon(paths(), name ?? null);
    print(`no daemon running; flushed the log files of ${apps.length} app(s)${apps.length > 0 ? `: ${apps.join(', ')}` : ''}`);
  });

program
  .command('import')
  .description('convert another process manager\'s config: prints the equivalent ecosystem.config.ts')
  .argument('<format>', "'pm2'")
  .argument('<file>', 'a PM2 ecosystem file (module.exports = { apps: [...] })')
  .addHelpText('after', '\nExample:\n  agentpm import pm2 ecosystem.config.js > ecosystem.config.ts')
  .action(async (format: string, file: string) => {
    if (format !== 'pm2') throw new AgentpmError('invalid-argument', `cannot import '${format}'; supported: pm2`);
    const { convertPm2Isolated } = await import('../config/isolated.js');
    const { source, warnings } = await convertPm2Isolated(resolve(file));
    for (const warning of warnings) process.stderr.write(`agentpm: warning: ${warning}\n`);
    process.stdout.write(source);
  });

const daemon = program.command('daemon').description('control the background daemon');
daemon
  .command('start')
  .description('start the daemon if it is not running')
  .option('--metrics <address>', `serve Prometheus metrics on HOST:PORT (e.g. 127.0.0.1:9464), or 'off'; kept across daemon restarts`)
  .option('--metrics-allow-public', 'allow --metrics on an address that is not loopback (the endpoint has no authentication)')
  .action(async (options: { metrics?: string; metricsAllowPublic?: boolean }) => {
    const metrics = options.metrics === undefined ? undefined : metricsFlag(options.metrics, options.metricsAllowPublic === true);
    if (options.metricsAllowPublic && metrics === undefined) throw new AgentpmError('invalid-argument', '--metrics-allow-public goes with --metrics HOST:PORT');
    const status = await withDaemon(true, async (client) => {
      if (metrics !== undefined) await client.request({ type: 'settings', settings: { metrics } });
      return client.request({ type: 'status' });
    });
    print(`daemon running (pid ${status.pid}, ${paths().home})`);
    if (metrics === undefined) return;
    if (status.metrics === null) return print('metrics: off');
    if (status.metrics.problem) throw new AgentpmError('metrics-unavailable', `metrics are not served: ${status.metrics.problem}. The daemon runs on without them.`);
    print(`metrics: ${status.metrics.url}`);
  });
daemon
  .command('stop')
  .description('stop the daemon, leaving every app running for the next daemon to adopt')
  .action(async () => {
    const pid = await stopDaemon(paths());
    print(pid === null ? 'no daemon running' : `daemon ${pid} stopped; apps keep running`);
  });
daemon
  .command('restart')
  .description('replace the daemon (e.g. after upgrading agentpm) while every app keeps running; the new one adopts them')
  .action(async () => {
    const before = await stopDaemon(paths());
    const status = await withDaemon(true, (client) => client.request({ type: 'status' }));
    const apps = (await call({ type: 'ls' })).filter((app) => app.status === 'online').length;
    print(`${before === null ? 'no daemon was running; started' : `daemon ${before} replaced by`} pid ${status.pid} (agentpm ${status.version}); ${apps} app(s) online`);
  });
daemon
  .command('logs')
  .description("the daemon's own log (daemon.log and its rotated copies): refusals, failures, what it could not do")
  .option('--lines <n>', 'lines to print from the end', '50')
  .option('-f, --follow', 'keep printing new lines')
  .action(async (options: { lines: string; follow?: boolean }) => {
    const { showDaemonLog } = await import('./logs.js');
    await showDaemonLog(paths().daemonLog, wholeNumberFlag('--lines', options.lines, 0, MAX_LOG_LINES), options.follow === true);
  });
daemon
  .command('status')
  .description("the daemon's pid, version, uptime and home (exit 1 if not running)")
  .option('--json', 'machine-readable output')
  .action(async (options: { json?: boolean }) => {
    const client = await connectIfRunning(paths());
    if (!client) {
      if (options.json) printJson({ running: false, home: paths().home });
      else print(`no daemon running for ${paths().home}`);
      process.exitCode = 1;
      return;
    }
    try {
      const status = await client.request({ type: 'status' });
      if (options.json) printJson({ running: true, ...status });
      else {
        print(`daemon running: pid ${status.pid}, agentpm ${status.version}, up ${Math.round(status.uptimeMs / 1000)}s, ${status.apps} app(s), home ${status.home}`);
        const cost = status.tickCost;
        print(`monitor: tick every ${status.tickMs} ms, costing ${cost.medianMs} ms (median; max ${cost.maxMs}) over ${cost.processes} processes; daemon RSS ${formatBytes(status.rss)}`);
        if (status.metrics) print(`metrics: ${status.metrics.url ?? `not served (${status.metrics.listen}): ${status.metrics.problem}`}`);
        const relay = status.relay;
        print(relay ? `log relay: pid ${relay.pid}, ${relay.apps} app(s) attached (${relay.fifos} FIFOs), RSS ${formatBytes(relay.rss)}` : `log relay: none (${status.relayProblem ?? 'unknown'})`);
        for (const entry of status.unrotated) print(`  ${entry.app} (instance ${entry.instance}): logs not rotated, written directly: ${entry.why}`);
        print(renderContainment(status.containment));
      }
    } finally {
      client.close();
    }
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof AgentpmError) {
    process.stderr.write(`agentpm: ${error.message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stderr.write(`agentpm: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 70;
});
