// The bench's own view of one process tree, sampled from /proc in a worker thread, so that the bench's
// blocking CLI calls (spawnSync) never pause it. Plain JavaScript: workers do not get tsx's loader here.
//
// workerData: { rootPid, rootStart, env: [[name, value], ...], intervalMs, limitBytes, childrenLimit,
//               maxMs }
// The tree is the root (while it is the same process: pid + start time) and its live descendants, plus
// every live process whose initial environment has one of the `env` pairs (orphans reparented to
// init, processes that outlived the root). Zombies are dead. Memory is the sum of RSS (stat field 24,
// as agentpm measures it).
//
// Messages to the parent: {type: 'stats', stats} after the first sample and whenever a milestone is
// first reached; on {type: 'stop'} (or after maxMs), a last {type: 'stats', stats, final: true}.
import { readdirSync, readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { rootPid, rootStart, env, intervalMs, limitBytes = null, childrenLimit = null, maxMs = 120_000 } = workerData;
const PAGE = 4096;
const wanted = env.map(([name, value]) => `${name}=${value}`);
/** `pid:start` -> whether its environment carries one of the wanted pairs (read once per process). */
const envMatch = new Map();

const stats = {
  samples: 0,
  firstAt: null,
  lastAt: null,
  maxGapMs: 0,
  maxMemory: 0,
  maxRootMemory: 0,
  maxCount: 0,
  /** Live tree processes at the latest sample. */
  count: 0,
  /** First sample whose tree memory is over limitBytes. */
  crossAt: null,
  /** First sample with more live descendants than childrenLimit. */
  breachAt: null,
  /** First sample, after crossAt or breachAt, in which nothing of the tree is alive. */
  zeroAt: null,
  /** First sample in which the root is no longer the process it was (gone, zombie or reused pid). */
  rootGoneAt: null,
};

function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0], ppid: Number(rest[1]), start: rest[19], rss: Number(rest[21]) * PAGE };
  } catch {
    return null;
  }
}

function matchesEnv(proc) {
  const key = `${proc.pid}:${proc.start}`;
  let match = envMatch.get(key);
  if (match === undefined) {
    try {
      const entries = readFileSync(`/proc/${proc.pid}/environ`, 'latin1').split('\0');
      match = wanted.some((pair) => entries.includes(pair));
    } catch {
      match = false;
    }
    envMatch.set(key, match);
  }
  return match;
}

function sample() {
  const at = Date.now();
  const procs = [];
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    const proc = readStat(Number(entry));
    if (proc) procs.push(proc);
  }
  const alive = (proc) => proc.state !== 'Z' && proc.state !== 'X';
  const byParent = new Map();
  for (const proc of procs) {
    if (!byParent.has(proc.ppid)) byParent.set(proc.ppid, []);
    byParent.get(proc.ppid).push(proc);
  }
  const members = new Set();
  const root = procs.find((proc) => proc.pid === rootPid && proc.start === rootStart && alive(proc));
  if (root) {
    const queue = [root];
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (members.has(next)) continue;
      members.add(next);
      queue.push(...(byParent.get(next.pid) ?? []));
    }
  }
  if (wanted.length > 0) for (const proc of procs) if (!members.has(proc) && matchesEnv(proc)) members.add(proc);
  let count = 0;
  let memory = 0;
  for (const proc of members) {
    if (!alive(proc)) continue;
    count += 1;
    memory += proc.rss;
  }
  const children = count - (root ? 1 : 0);

  if (stats.lastAt !== null) stats.maxGapMs = Math.max(stats.maxGapMs, at - stats.lastAt);
  stats.samples += 1;
  stats.firstAt ??= at;
  stats.lastAt = at;
  stats.maxMemory = Math.max(stats.maxMemory, memory);
  stats.maxRootMemory = Math.max(stats.maxRootMemory, root ? root.rss : 0);
  stats.count = count;
  stats.maxCount = Math.max(stats.maxCount, count);
  let milestone = stats.samples === 1;
  if (stats.crossAt === null && limitBytes !== null && memory > limitBytes) (stats.crossAt = at), (milestone = true);
  if (stats.breachAt === null && childrenLimit !== null && children > childrenLimit) (stats.breachAt = at), (milestone = true);
  if (stats.zeroAt === null && (stats.crossAt !== null || stats.breachAt !== null) && count === 0) (stats.zeroAt = at), (milestone = true);
  if (stats.rootGoneAt === null && !root) (stats.rootGoneAt = at), (milestone = true);
  if (milestone) parentPort.postMessage({ type: 'stats', stats });
}

let stopped = false;
const startedAt = Date.now();
function finish() {
  if (stopped) return;
  stopped = true;
  parentPort.postMessage({ type: 'stats', stats, final: true });
  parentPort.close();
}
parentPort.on('message', (message) => {
  if (message?.type === 'stop') finish();
});

function loop() {
  if (stopped) return;
  const began = Date.now();
  sample();
  if (Date.now() - startedAt > maxMs) return finish();
  setTimeout(loop, Math.max(0, intervalMs - (Date.now() - began)));
}
loop();
