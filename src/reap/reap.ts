/**
 * `reap`: find orphans and end them with the same TERM → grace → KILL path as a stop. Used by the
 * daemon (with its live registry) and by the CLI alone when no daemon runs (with the registry file).
 *
 * Safety: right before every signal, the process is re-read and must still be the one listed (pid and
 * start time) and still qualify (its tag re-read from its environment, or, for unmanaged orphans, its
 * command line re-read and matched again, and its owner still the caller).
 */
import type { OrphanInfo, ReapOptions, ReapResult } from '../protocol.js';
import { terminateTree, type StillEligible } from '../proc/kill.js';
import { childrenByParent } from '../proc/tree.js';
import { isAlive, type ProcInfo, type ProcessTable } from '../proc/table.js';
import { ancestry, compileUnmanaged, findOrphans, type HomeView } from './find.js';

export interface ReapContext {
  table: ProcessTable;
  home: string;
  viewOf: (home: string) => HomeView | null;
  /** Processes to protect besides the caller's chain: the daemon's own. */
  protectedPids: number[];
  daemon: boolean;
}

export function listOrphans(context: ReapContext, options: ReapOptions): OrphanInfo[] {
  const snapshot = context.table.scan();
  const protectedPids = ancestry(snapshot, process.pid);
  for (const pid of context.protectedPids) for (const ancestor of ancestry(snapshot, pid)) protectedPids.add(ancestor);
  return findOrphans(snapshot, context.table, {
    home: context.home,
    viewOf: context.viewOf,
    app: options.app,
    allHomes: options.allHomes,
    unmanaged: compileUnmanaged(options.unmanaged),
    protectedPids,
    uid: process.getuid?.() ?? null,
    now: Date.now(),
  });
}

export async function reap(context: ReapContext, options: ReapOptions): Promise<ReapResult> {
  let found = listOrphans(context, options);
  const skipped: ReapResult['skipped'] = [];
  if (options.only !== null) {
    const key = (item: { pid: number; startTime: number }): string => `${item.pid}:${item.startTime}`;
    const wanted = new Set(options.only.map(key));
    const current = new Set(found.map(key));
    for (const item of options.only) {
      if (!current.has(key(item))) skipped.push({ ...item, why: 'not an orphan now, or the pid belongs to another process' });
    }
    found = found.filter((item) => wanted.has(key(item)));
  }
  const result: ReapResult = { daemon: context.daemon, dryRun: options.dryRun, found, ended: 0, survivors: 0, skipped };
  if (options.dryRun || found.length === 0) return result;
  const ended = await endOrphans(context.table, found, options.graceMs, compileUnmanaged(options.unmanaged)?.pattern ?? null);
  return { ...result, ended: ended.ended, survivors: ended.survivors };
}

/**
 * Ends the listed orphans and anything they fork meanwhile. Each round re-reads the table; a listed pid
 * with another start time now is someone else's and is never touched.
 */
export async function endOrphans(table: ProcessTable, orphans: readonly OrphanInfo[], graceMs: number, pattern: RegExp | null): Promise<{ ended: number; survivors: number }> {
  const listed = new Map(orphans.map((item) => [`${item.pid}:${item.startTime}`, item]));
  const uid = process.getuid?.() ?? null;
  const stillEligible: StillEligible = (fresh) => {
    if (uid !== null && table.uid(fresh) !== uid) return false;
    const instance = table.tags(fresh, true)?.instance ?? null;
    const item = listed.get(`${fresh.pid}:${fresh.startTime}`);
    // Forked since the listing, or a descendant listed with its orphaned ancestor: it must not belong
    // to an instance of its own (a live one would never descend from an orphan; be sure anyway).
    if (!item || item.via !== null) return instance === null || instance === item?.instance;
    if (item.why === 'unmanaged-match') return instance === null && pattern !== null && pattern.test(table.cmdline(fresh, true));
    return instance === item.instance;
  };
  const result = await terminateTree(
    table,
    (snapshot) => {
      const members: ProcInfo[] = [];
      const children = childrenByParent(snapshot);
      const queue = [...listed.values()].map((item) => snapshot.byPid.get(item.pid)).filter((proc): proc is ProcInfo => proc !== undefined && listed.has(`${proc.pid}:${proc.startTime}`));
      const seen = new Set<number>();
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (seen.has(next.pid) || !isAlive(next)) continue;
        seen.add(next.pid);
        members.push(next);
        queue.push(...(children.get(next.pid) ?? []));
      }
      return members;
    },
    { signal: 'SIGTERM', graceMs, stillEligible },
  );
  return { ended: result.seen - result.survivors.length, survivors: result.survivors.length };
}
