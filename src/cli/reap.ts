/**
 * `agentpm reap`: through the daemon when one runs (it knows which instances are live right now), or
 * alone from the process table and registry.json when none does.
 */
import { formatBytes, formatDuration, parseDuration } from '../config/units.js';
import { maskCommand } from '../secrets.js';
import { DEFAULT_REAP_GRACE_MS, DEFAULT_UNMANAGED_MIN_AGE_MS } from '../config/defaults.js';
import { AgentpmError } from '../errors.js';
import type { HomePaths } from '../home.js';
import { LIST_LIMITS, type OrphanInfo, type ReapOptions, type ReapResult } from '../protocol.js';
import { DaemonClient } from './client.js';
import { renderTable } from './render.js';

export interface ReapFlags {
  dryRun?: boolean;
  json?: boolean;
  app?: string;
  unmanaged?: boolean;
  match?: string;
  olderThan?: string;
  allHomes?: boolean;
  pid?: string[];
  grace?: string;
}

export const EXIT_NOTHING_FOUND = 0;
export const EXIT_FOUND = 2;

/** Everything but the caller, which runReap fills in from /proc (the daemon checks it there). */
export function reapOptionsFrom(flags: ReapFlags): Omit<ReapOptions, 'caller'> {
  if (flags.unmanaged && !flags.match) {
    throw new AgentpmError('invalid-argument', '--unmanaged needs --match <regex>: agentpm never ends processes it did not start without a pattern naming them');
  }
  if (flags.match && !flags.unmanaged) throw new AgentpmError('invalid-argument', '--match goes with --unmanaged');
  if (flags.olderThan && !flags.unmanaged) throw new AgentpmError('invalid-argument', '--older-than goes with --unmanaged');
  if (flags.unmanaged && flags.app) throw new AgentpmError('invalid-argument', '--app and --unmanaged do not go together: unmanaged processes belong to no app');
  let unmanaged: ReapOptions['unmanaged'] = null;
  if (flags.match && flags.match.length > LIST_LIMITS.patternLength) {
    throw new AgentpmError('invalid-argument', `--match: at most ${LIST_LIMITS.patternLength} characters, got ${flags.match.length}`);
  }
  if ((flags.pid?.length ?? 0) > LIST_LIMITS.reapPids) {
    throw new AgentpmError('invalid-argument', `--pid: at most ${LIST_LIMITS.reapPids} processes at once, got ${flags.pid?.length}; run reap again for the rest`);
  }
  if (flags.unmanaged && flags.match) {
    try {
      new RegExp(flags.match);
    } catch (error) {
      throw new AgentpmError('invalid-argument', `--match: not a valid regular expression: ${(error as Error).message}`);
    }
    unmanaged = { match: flags.match, olderThanMs: duration('--older-than', flags.olderThan, DEFAULT_UNMANAGED_MIN_AGE_MS) };
  }
  const only = flags.pid?.map((text) => {
    const match = /^(\d+):(\d+)$/.exec(text);
    if (!match) throw new AgentpmError('invalid-argument', `--pid expects pid:startTime as printed by \`agentpm reap --dry-run --json\`, got '${text}'`);
    const pid = Number(match[1]);
    const startTime = Number(match[2]);
    // Linux pids are at most 2^22; a start time is in clock ticks since boot.
    if (pid < 1 || pid > 4_194_304 || !Number.isSafeInteger(startTime)) throw new AgentpmError('invalid-argument', `--pid: '${text}' is not a pid:startTime this system can have`);
    return { pid, startTime };
  });
  return {
    app: flags.app ?? null,
    dryRun: flags.dryRun === true,
    allHomes: flags.allHomes === true,
    unmanaged,
    only: only ?? null,
    graceMs: duration('--grace', flags.grace, DEFAULT_REAP_GRACE_MS),
  };
}

function duration(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const parsed = parseDuration(text);
  if (!parsed.ok) throw new AgentpmError('invalid-argument', `${flag}: ${parsed.message}`);
  return parsed.value;
}

export async function runReap(paths: HomePaths, flags: ReapFlags): Promise<number> {
  const [{ selfRef }, { createProcessTable }] = await Promise.all([import('../reap/guard.js'), import('../proc/platform.js')]);
  // This CLI and its ancestors (the shell, the script, the agent that ran it) are never reaped.
  const options: ReapOptions = { ...reapOptionsFrom(flags), caller: await selfRef() };
  let result: ReapResult;
  let client: DaemonClient | null = null;
  try {
    client = await DaemonClient.connect(paths, { autostart: false });
  } catch (error) {
    if (!(error instanceof AgentpmError && error.code === 'daemon-unreachable')) throw error;
  }
  if (client) {
    try {
      result = await client.request({ type: 'reap', options });
    } finally {
      client.close();
    }
  } else {
    const [{ reap }, { homeViewFromRegistry }] = await Promise.all([import('../reap/reap.js'), import('../reap/views.js')]);
    const table = await createProcessTable();
    result = await reap({ table, home: paths.home, viewOf: (home) => homeViewFromRegistry(home, table), daemon: false }, options);
  }
  // Command lines of leaked processes carry tokens as often as definitions do; pid:startTime identifies them.
  result = { ...result, found: result.found.map((item) => ({ ...item, cmd: maskCommand(item.cmd) })) };
  if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${renderReap(result)}\n`);
  return result.found.length > 0 ? EXIT_FOUND : EXIT_NOTHING_FOUND;
}

function renderReap(result: ReapResult): string {
  const lines: string[] = [];
  if (!result.daemon) lines.push('no daemon running: reaped from the process table and registry.json alone');
  if (result.found.length === 0) lines.push('no orphans found');
  else {
    const header = ['pid', 'app', 'instance', 'age', 'rss', 'why', 'command'];
    const rows = result.found.map((item: OrphanInfo) => [
      String(item.pid),
      item.app ?? '-',
      item.instance?.slice(0, 12) ?? '-',
      formatDuration(item.ageMs),
      formatBytes(item.rss),
      item.via !== null ? `child of ${item.via}` : item.why,
      item.cmd.slice(0, 80),
    ]);
    lines.push(renderTable([header, ...rows]));
    lines.push(result.dryRun ? `dry run: ${result.found.length} orphan(s) found, nothing was ended` : `ended ${result.ended} process(es)${result.survivors > 0 ? `; ${result.survivors} survived SIGKILL` : ''}`);
  }
  for (const item of result.skipped) lines.push(`left alone: pid ${item.pid} (${item.why})`);
  return lines.join('\n');
}
