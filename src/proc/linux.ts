/**
 * Linux process table, read straight from /proc.
 *
 * One scan is one readdir of /proc plus one read of /proc/<pid>/stat per process: the cost grows with
 * the number of processes on the machine, not with apps × processes, and spawns nothing. This is why
 * neither `pidusage` (one stat read per pid asked for, no notion of children, an fd kept per pid) nor
 * `ps` is used here: a scan has to see every process anyway to find descendants, including those that
 * were reparented to init or called setsid. Environments and command lines never change for one
 * (pid, start time), so they are read once and cached until the process is gone.
 *
 * A scan keeps each process's `stat` open from one scan to the next and re-reads it with one pread:
 * one syscall per process per tick instead of open + read + close, which was most of a tick's cost.
 * A kept descriptor names one process, not a pid number: once that process is reaped, reading it
 * fails (ESRCH) even if the pid was handed to a new process, so a reused pid is never read through it.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import type { ProcInfo, ProcSnapshot, ProcTags, ProcessTable } from './table.js';

/** USER_HZ: the unit of /proc times. Fixed at 100 by the kernel ABI on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;
const AT_PAGESZ = 6;
const UNTAGGED_CACHE_MIN_AGE_MS = 250;
/** Kept `stat` descriptors are at most this share of the descriptor limit: sockets and logs come first. */
const KEPT_FD_SHARE = 4;
const KEPT_FD_MAX = 8192;

/** Kept descriptors of every table in this process, against one budget (a share of the descriptor limit). */
const kept = { count: 0, max: -1 };

/** A value cached for one process: valid while the pid still names a process with this start time. */
interface Cached<T> {
  startTime: number;
  value: T;
}

export class LinuxProcessTable implements ProcessTable {
  readonly clockTicksPerSecond = CLOCK_TICKS_PER_SECOND;
  private readonly pageSize = readPageSize();
  private readonly bootTimeMs = readBootTimeMs();
  readonly bootId = readBootId();
  private readonly statBuffer = Buffer.alloc(4096);
  /** Keyed by pid: a lookup allocates nothing, and the start time tells a reused pid apart. */
  private tagCache = new Map<number, Cached<ProcTags | null>>();
  private cmdlineCache = new Map<number, Cached<string>>();
  /** pid → its open /proc/<pid>/stat, for the next scan (see the header). */
  private keptStat = new Map<number, number>();

  scan(): ProcSnapshot {
    // The limit can be lowered while the daemon runs (prlimit, a smaller limit for a service): the budget
    // follows it at every scan, and what is kept beyond it is closed, so kept descriptors never crowd
    // out the clients and the apps' pipes that the server's admission check counts on.
    kept.max = keptFdBudget();
    for (const [pid, fd] of this.keptStat) {
      if (kept.count <= kept.max) break;
      this.release(pid, fd);
    }
    const byPid = new Map<number, ProcInfo>();
    // No try: an unreadable /proc must fail the scan, not look like a machine where every process is gone.
    const entries = readdirSync('/proc');
    for (const entry of entries) {
      const first = entry.charCodeAt(0);
      if (first < 48 || first > 57) continue;
      const pid = Number(entry);
      const proc = this.readForScan(pid);
      if (proc) byPid.set(pid, proc);
    }
    this.evictGone(byPid);
    return { at: Date.now(), byPid };
  }

  read(pid: number): ProcInfo | null {
    // Always a fresh open: this is the read the identity check before a signal relies on.
    const fd = this.openStat(pid);
    if (fd === null) return null;
    try {
      return this.readStat(fd);
    } catch (error) {
      if (isGoneError(error)) return null;
      throw error;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * One process for a scan: through its kept descriptor when there is one, else opened (and kept while
   * the budget allows). Failures mean what they mean in `read`.
   */
  private readForScan(pid: number): ProcInfo | null {
    const keptFd = this.keptStat.get(pid);
    if (keptFd !== undefined) {
      let proc: ProcInfo | null = null;
      try {
        proc = this.readStat(keptFd);
      } catch {
        // gone (ESRCH), or anything else: the descriptor is dropped and a fresh open decides below
      }
      if (proc !== null && proc.pid === pid) return proc;
      this.release(pid, keptFd);
    }
    const fd = this.openStat(pid);
    if (fd === null) return null;
    let proc: ProcInfo | null = null;
    try {
      proc = this.readStat(fd);
    } catch (error) {
      closeSync(fd);
      if (isGoneError(error)) return null;
      throw error;
    }
    if (proc !== null && kept.count < kept.max) {
      this.keptStat.set(pid, fd);
      kept.count += 1;
    } else {
      closeSync(fd);
    }
    return proc;
  }

  /**
   * Opens /proc/<pid>/stat; null when the process is gone. Only "no such process" (or, under hidepid,
   * "not yours to see") means absent. Any other failure (EMFILE under fd exhaustion, ENOMEM) is thrown:
   * a stop that took it for "gone" would report a tree ended while it still runs.
   */
  private openStat(pid: number): number | null {
    try {
      return openSync(`/proc/${pid}/stat`, 'r');
    } catch (error) {
      if (isGoneError(error)) return null;
      throw error;
    }
  }

  private release(pid: number, fd: number): void {
    this.keptStat.delete(pid);
    kept.count -= 1;
    closeSync(fd);
  }

  /** One read into a reused buffer: readFileSync would also fstat and allocate per call. */
  private readStat(fd: number): ProcInfo | null {
    const length = readSync(fd, this.statBuffer, 0, this.statBuffer.length, 0);
    return parseStat(this.statBuffer.toString('latin1', 0, length), this.pageSize);
  }

  tags(proc: ProcInfo, fresh = false): ProcTags | null {
    const cached = fresh ? undefined : this.tagCache.get(proc.pid);
    if (cached !== undefined && cached.startTime === proc.startTime) return cached.value;
    const tags = readTags(proc.pid);
    // Between fork and exec a child still shows its parent's environment, with the same start time it
    // will keep after exec. So "untagged" is only remembered for processes old enough to have exec'd.
    if (tags !== null || Date.now() - this.startedAtMs(proc) > UNTAGGED_CACHE_MIN_AGE_MS) this.tagCache.set(proc.pid, { startTime: proc.startTime, value: tags });
    return tags;
  }

  cmdline(proc: ProcInfo, fresh = false): string {
    const cached = fresh ? undefined : this.cmdlineCache.get(proc.pid);
    if (cached !== undefined && cached.startTime === proc.startTime) return cached.value;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
    } catch {
      // gone or a kernel thread: fall back to comm below
    }
    if (cmd === '') cmd = `[${proc.comm}]`;
    this.cmdlineCache.set(proc.pid, { startTime: proc.startTime, value: cmd });
    return cmd;
  }

  ticksNow(): number {
    // /proc/uptime rather than Date.now() against the boot time: wall-clock steps must not move it.
    const uptimeSeconds = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    return Math.floor(uptimeSeconds * CLOCK_TICKS_PER_SECOND);
  }

  startedAtMs(proc: ProcInfo): number {
    return Math.round(this.bootTimeMs + (proc.startTime * 1000) / CLOCK_TICKS_PER_SECOND);
  }

  pss(proc: ProcInfo): number | null {
    try {
      // smaps_rollup (Linux 4.14+) sums every mapping in the kernel: one read instead of smaps' thousands of lines.
      const match = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${proc.pid}/smaps_rollup`, 'latin1'));
      return match?.[1] ? Number(match[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  uid(proc: ProcInfo): number | null {
    try {
      return statSync(`/proc/${proc.pid}`).uid;
    } catch {
      return null;
    }
  }

  private evictGone(byPid: Map<number, ProcInfo>): void {
    for (const cache of [this.tagCache, this.cmdlineCache] as Map<number, Cached<unknown>>[]) {
      for (const [pid, cached] of cache) if (byPid.get(pid)?.startTime !== cached.startTime) cache.delete(pid);
    }
    // Processes no longer listed: their descriptors are closed now, not when the pid shows up again.
    for (const [pid, fd] of this.keptStat) if (!byPid.has(pid)) this.release(pid, fd);
  }
}

function isGoneError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM';
}

/**
 * Parses /proc/<pid>/stat. comm may contain spaces and parentheses, so the fields are read after the
 * last ')'. They are walked in place rather than split: a scan parses every process on every tick, and
 * an array of 50 strings per process was most of its garbage.
 */
export function parseStat(text: string, pageSize: number): ProcInfo | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  let state = '?';
  // Fields of proc(5) from 3 (state) on; a field that is missing or not a number stays NaN.
  let ppid = NaN;
  let pgid = NaN;
  let sid = NaN;
  let utime = NaN;
  let stime = NaN;
  let startTime = NaN;
  let rssPages = NaN;
  let field = 3;
  let value = 0;
  let digits = 0;
  for (let at = close + 2; at <= text.length && field <= 24; at += 1) {
    const code = at < text.length ? text.charCodeAt(at) : 32;
    if (code === 32 || code === 10) {
      const number = digits > 0 ? value : NaN;
      if (field === 3) state = text.slice(at - digits, at) || '?';
      else if (field === 4) ppid = number;
      else if (field === 5) pgid = number;
      else if (field === 6) sid = number;
      else if (field === 14) utime = number;
      else if (field === 15) stime = number;
      else if (field === 22) startTime = number;
      else if (field === 24) rssPages = number;
      field += 1;
      value = 0;
      digits = 0;
      continue;
    }
    digits += 1;
    // A sign or any other character makes the field no number (the fields read here are never negative).
    value = code >= 48 && code <= 57 ? value * 10 + (code - 48) : NaN;
  }
  if (!Number.isFinite(pid) || !Number.isFinite(startTime)) return null;
  return { pid, ppid, pgid, sid, cpuTicks: utime + stime, startTime, rssBytes: rssPages * pageSize, state, comm };
}

/** Extracts the AGENTPM_* tags from a NUL-separated environment block. */
export function parseTags(environ: string): ProcTags | null {
  if (!environ.includes('AGENTPM_')) return null;
  const tags: ProcTags = { app: null, instance: null, home: null };
  for (const entry of environ.split('\0')) {
    if (!entry.startsWith('AGENTPM_')) continue;
    const eq = entry.indexOf('=');
    const key = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (key === 'AGENTPM_APP') tags.app = value;
    else if (key === 'AGENTPM_INSTANCE') tags.instance = value;
    else if (key === 'AGENTPM_HOME') tags.home = value;
  }
  return tags.app === null && tags.instance === null && tags.home === null ? null : tags;
}

function readTags(pid: number): ProcTags | null {
  try {
    return parseTags(readFileSync(`/proc/${pid}/environ`, 'utf8'));
  } catch {
    return null; // another user's process, or gone
  }
}

/** The page size from the auxiliary vector (AT_PAGESZ), so RSS is right on 16K/64K-page kernels too. */
function readPageSize(): number {
  try {
    const auxv = readFileSync('/proc/self/auxv');
    const wide = process.arch.endsWith('64');
    const step = wide ? 16 : 8;
    for (let at = 0; at + step <= auxv.length; at += step) {
      const type = wide ? Number(auxv.readBigUInt64LE(at)) : auxv.readUInt32LE(at);
      const value = wide ? Number(auxv.readBigUInt64LE(at + 8)) : auxv.readUInt32LE(at + 4);
      if (type === AT_PAGESZ && value > 0) return value;
      if (type === 0) break;
    }
  } catch {
    // fall through
  }
  return 4096;
}

/** How many `stat` descriptors a scan may keep open: a share of this process's descriptor limit. */
export function keptFdBudget(): number {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    const soft = match?.[1] === 'unlimited' ? Infinity : Number(match?.[1]);
    return Number.isFinite(soft) || soft === Infinity ? Math.min(KEPT_FD_MAX, Math.floor(soft / KEPT_FD_SHARE)) : 0;
  } catch {
    return 0; // unknown limit: keep none, as before
  }
}

function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return null;
  }
}

function readBootTimeMs(): number {
  try {
    const uptimeSeconds = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    if (Number.isFinite(uptimeSeconds)) return Date.now() - uptimeSeconds * 1000;
  } catch {
    // fall through
  }
  return 0;
}
