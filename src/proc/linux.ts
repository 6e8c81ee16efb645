/**
 * Linux process table, read straight from /proc.
 *
 * One scan is one readdir of /proc plus one read of /proc/<pid>/stat per process: the cost grows with
 * the number of processes on the machine, not with apps × processes, and spawns nothing. This is why
 * neither `pidusage` (one stat read per pid asked for, no notion of children, an fd kept per pid) nor
 * `ps` is used here: a scan has to see every process anyway to find descendants, including those that
 * were reparented to init or called setsid. Environments and command lines never change for one
 * (pid, start time), so they are read once and cached until the process is gone.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import type { ProcInfo, ProcSnapshot, ProcTags, ProcessTable } from './table.js';

/** USER_HZ: the unit of /proc times. Fixed at 100 by the kernel ABI on every mainstream architecture. */
const CLOCK_TICKS_PER_SECOND = 100;
const AT_PAGESZ = 6;
const UNTAGGED_CACHE_MIN_AGE_MS = 250;

export class LinuxProcessTable implements ProcessTable {
  readonly clockTicksPerSecond = CLOCK_TICKS_PER_SECOND;
  private readonly pageSize = readPageSize();
  private readonly bootTimeMs = readBootTimeMs();
  readonly bootId = readBootId();
  private readonly statBuffer = Buffer.alloc(4096);
  private tagCache = new Map<string, ProcTags | null>();
  private cmdlineCache = new Map<string, string>();

  scan(): ProcSnapshot {
    const byPid = new Map<number, ProcInfo>();
    // No try: an unreadable /proc must fail the scan, not look like a machine where every process is gone.
    const entries = readdirSync('/proc');
    for (const entry of entries) {
      const first = entry.charCodeAt(0);
      if (first < 48 || first > 57) continue;
      const pid = Number(entry);
      const proc = this.read(pid);
      if (proc) byPid.set(pid, proc);
    }
    this.evictGone(byPid);
    return { at: Date.now(), byPid };
  }

  read(pid: number): ProcInfo | null {
    // open + one read into a reused buffer: readFileSync would also fstat and allocate per call, which
    // is most of the cost of a scan on a busy machine.
    // Only "no such process" (or, under hidepid, "not yours to see") means absent. Any other failure
    // (EMFILE under fd exhaustion, ENOMEM) is thrown: a stop that took it for "gone" would report a
    // tree ended while it still runs.
    let fd: number;
    try {
      fd = openSync(`/proc/${pid}/stat`, 'r');
    } catch (error) {
      if (isGoneError(error)) return null;
      throw error;
    }
    try {
      const length = readSync(fd, this.statBuffer, 0, this.statBuffer.length, 0);
      return parseStat(this.statBuffer.toString('latin1', 0, length), this.pageSize);
    } catch (error) {
      if (isGoneError(error)) return null;
      throw error;
    } finally {
      closeSync(fd);
    }
  }

  tags(proc: ProcInfo, fresh = false): ProcTags | null {
    const key = cacheKey(proc);
    const cached = fresh ? undefined : this.tagCache.get(key);
    if (cached !== undefined) return cached;
    const tags = readTags(proc.pid);
    // Between fork and exec a child still shows its parent's environment, with the same start time it
    // will keep after exec. So "untagged" is only remembered for processes old enough to have exec'd.
    if (tags !== null || Date.now() - this.startedAtMs(proc) > UNTAGGED_CACHE_MIN_AGE_MS) this.tagCache.set(key, tags);
    return tags;
  }

  cmdline(proc: ProcInfo, fresh = false): string {
    const key = cacheKey(proc);
    const cached = fresh ? undefined : this.cmdlineCache.get(key);
    if (cached !== undefined) return cached;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
    } catch {
      // gone or a kernel thread: fall back to comm below
    }
    if (cmd === '') cmd = `[${proc.comm}]`;
    this.cmdlineCache.set(key, cmd);
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
    for (const cache of [this.tagCache, this.cmdlineCache] as Map<string, unknown>[]) {
      for (const key of cache.keys()) {
        const [pid, start] = key.split(':');
        const live = byPid.get(Number(pid));
        if (!live || String(live.startTime) !== start) cache.delete(key);
      }
    }
  }
}

function isGoneError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM';
}

function cacheKey(proc: ProcInfo): string {
  return `${proc.pid}:${proc.startTime}`;
}

/** Parses /proc/<pid>/stat. comm may contain spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string, pageSize: number): ProcInfo | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  // Fields from 3 (state) on; index i here is field i + 3 of proc(5).
  const rest = text.slice(close + 2).split(' ');
  const field = (n: number): number => Number(rest[n - 3]);
  const state = rest[0] ?? '?';
  const proc: ProcInfo = {
    pid,
    ppid: field(4),
    pgid: field(5),
    sid: field(6),
    cpuTicks: field(14) + field(15),
    startTime: field(22),
    rssBytes: field(24) * pageSize,
    state,
    comm,
  };
  if (!Number.isFinite(proc.pid) || !Number.isFinite(proc.startTime)) return null;
  return proc;
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
