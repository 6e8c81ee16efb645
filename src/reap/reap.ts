/**
 * `reap`: find orphans and end them with the same TERM → grace → KILL path as a stop. Used by the
 * daemon (with its live registry) and by the CLI alone when no daemon runs (with the registry file).
 *
 * Safety: nothing the guard protects is listed (src/reap/guard.ts: the caller, the reaper, their
 * ancestors, every agentpm daemon, the homes other daemons answer for). Right before every signal, the
 * process is re-read and must still be the one listed (pid and start time), still qualify (its tag
 * re-read from its environment, or, for unmanaged orphans, its command line re-read and matched again,
 * and its owner still the caller) and still pass the guard.
 */
import type { OrphanInfo, ReapOptions, ReapResult } from '../protocol.js';
import { terminateTree, type StillEligible } from '../proc/kill.js';
import { childrenByParent } from '../proc/tree.js';
import { isAlive, type ProcInfo, type ProcessTable } from '../proc/table.js';
import { compileUnmanaged, findOrphans, type HomeView } from './find.js';
import { guardReap, verifyCaller, type ReapGuard } from './guard.js';
import type { CommandPattern } from './pattern.js';

export interface ReapContext {
  table: ProcessTable;
  home: string;
  viewOf: (home: string) => HomeView | null;
  /** True in the daemon of `home`; false for the CLI alone. */
  daemon: boolean;
}

/** What one listing found, and the guard every later signal for it must pass. */
export interface Listing {
  found: OrphanInfo[];
  guard: ReapGuard;
}

/** Throws when the caller is not who the request says, or when a live daemon of this home is not the reaper. */
export function listOrphans(context: ReapContext, options: ReapOptions): Listing {
  const { table } = context;
  const snapshot = table.scan();
  const uid = process.getuid?.() ?? null;
  verifyCaller(snapshot, table, options.caller, uid);
  const guard = guardReap(snapshot, table, { home: context.home, daemon: context.daemon, allHomes: options.allHomes, reaperPids: [process.pid], caller: options.caller, uid });
  const found = findOrphans(snapshot, table, {
    home: context.home,
    viewOf: context.viewOf,
    app: options.app,
    unmanaged: compileUnmanaged(options.unmanaged),
    protectedPids: guard.protectedPids,
    homeAllowed: guard.homeAllowed,
    uid,
    now: Date.now(),
  });
  return { found, guard };
}

export async function reap(context: ReapContext, options: ReapOptions): Promise<ReapResult> {
  const listing = listOrphans(context, options);
  let found = listing.found;
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
  const ended = await endOrphans(context.table, found, options.graceMs, compileUnmanaged(options.unmanaged)?.pattern ?? null, listing.guard);
  return { ...result, ended: ended.ended, survivors: ended.survivors };
}

/**
 * Ends the listed orphans and anything they fork meanwhile. Each round re-reads the table; a listed pid
 * with another start time now is someone else's and is never touched.
 */
export async function endOrphans(table: ProcessTable, orphans: readonly OrphanInfo[], graceMs: number, pattern: CommandPattern | null, guard: ReapGuard): Promise<{ ended: number; survivors: number }> {
  const listed = new Map(orphans.map((item) => [`${item.pid}:${item.startTime}`, item]));
  const uid = process.getuid?.() ?? null;
  const stillEligible: StillEligible = (fresh) => {
    if (uid !== null && table.uid(fresh) !== uid) return false;
    // What an orphan forked since the listing may be a new daemon (a CLI it ran started one), or of a
    // home another daemon answers for.
    if (!guard.allows(fresh)) return false;
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
        // Not through what the guard protects either: a daemon's children are its apps.
        if (seen.has(next.pid) || !isAlive(next) || !guard.allows(next, false)) continue;
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
