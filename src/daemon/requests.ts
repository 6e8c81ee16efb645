/**
 * Validation of requests arriving on the socket. Whatever a client sends, the daemon answers with an
 * error naming the problem, never with a crash.
 */
import { constants } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { kernelLimitProblems, MAX_CPU_PERCENT, MIN_CPU_PERCENT, type KernelLimitSpec } from '../cgroup/limits.js';
import { metricsProblem } from '../config/metrics.js';
import { MAX_COUNT, MAX_DURATION_MS, MAX_SIZE_BYTES } from '../config/units.js';
import { MAX_LOG_KEEP, MIN_LOG_MAX_SIZE } from '../config/defaults.js';
import { GUARD_ACTIONS, LIMIT_ACTIONS, LIST_LIMITS, MEMORY_METRICS, NOTIFY_KINDS, type AppSpec, type CronRestart, type Request } from '../protocol.js';
import { cronProblem } from '../cron.js';
import { v, type RefineContext } from '../validate.js';

const signalName = v.string().refine((name) => name in constants.signals, 'unknown signal name (expected e.g. SIGTERM, SIGINT, SIGHUP, SIGUSR1)');
const appName = v
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'app names are 1-64 characters of letters, digits, . _ - (not starting with . _ -)');
const ms = v.number().int().nonnegative().max(MAX_DURATION_MS);
// The same bounds as a config's: whatever passes the CLI passes here, and a hand-made request is held to them too.
const count = v.number().int().positive().max(MAX_COUNT);
const bytes = v.number().int().positive().max(MAX_SIZE_BYTES);
const env = v.record();

const notifyHook = v.strictObject({
  command: v.string().min(1).nullable(),
  webhook: v.string().url().nullable(),
  events: v.array(v.enum(NOTIFY_KINDS)).nullable(),
  timeoutMs: ms.min(1),
});

export const logPolicySchema = v.strictObject({
  maxSizeBytes: bytes.min(MIN_LOG_MAX_SIZE),
  keep: v.number().int().min(0).max(MAX_LOG_KEEP),
  compress: v.boolean(),
});

const appSpecShape = v.strictObject({
  name: appName,
  script: v.string().min(1),
  args: v.array(v.string()),
  cwd: v.string().min(1),
  interpreter: v.string().min(1).nullable(),
  interpreterArgs: v.array(v.string()),
  env,
  baseEnv: env,
  stopSignal: signalName,
  killTimeoutMs: ms,
  autorestart: v.boolean(),
  restartDelayMs: ms,
  maxRestartDelayMs: ms,
  minUptimeMs: ms,
  readyAfterMs: ms,
  maxRestarts: count.nullable(),
  restartWindowMs: ms,
  maxMemoryBytes: bytes.nullable(),
  maxChildren: v.number().int().nonnegative().max(MAX_COUNT).nullable(),
  hardMemoryBytes: v.union([bytes, v.literal(false)]).nullable(),
  maxTasks: v.union([count, v.literal(false)]).nullable(),
  maxCpuPercent: v.number().min(MIN_CPU_PERCENT).max(MAX_CPU_PERCENT).nullable(),
  memoryMetric: v.enum(MEMORY_METRICS),
  memoryBreachTicks: count,
  childrenBreachTicks: count,
  onLimit: v.enum(LIMIT_ACTIONS),
  reap: v.boolean(),
  watch: v.array(v.string().min(1)).max(LIST_LIMITS.watchPaths).nullable(),
  ignoreWatch: v.array(v.string()).max(LIST_LIMITS.ignorePatterns),
  watchDelayMs: ms,
  notify: v.array(notifyHook).max(LIST_LIMITS.notifyHooks),
  health: v
    .strictObject({
      http: v.string().url().nullable(),
      command: v.string().min(1).nullable(),
      intervalMs: ms.min(100),
      timeoutMs: ms.min(50),
      retries: count,
      startPeriodMs: ms,
    })
    .nullable(),
  hangTimeoutMs: ms.min(1).nullable(),
  priority: v.number().int(),
  guardAction: v.enum(GUARD_ACTIONS),
  oomScoreAdj: v.number().int().min(-1000).max(1000).nullable(),
  dependsOn: v.array(appName).max(LIST_LIMITS.dependsOn),
  // The expression itself is checked in checkSpec (croner is loaded only for a spec that has one).
  cronRestart: v.strictObject({ schedule: v.string().min(1).max(200), timezone: v.string().min(1).max(100).nullable() }).nullable(),
  logs: logPolicySchema,
});

/** The rules relating two fields, and the ones a schema cannot see, the same as a config file's (a hard memory cap below maxMemory...). */
function checkSpec(spec: KernelLimitSpec & { name: string; dependsOn: string[]; cronRestart: CronRestart | null }, context: RefineContext): void {
  for (const problem of kernelLimitProblems(spec)) context.addIssue({ message: `${problem.field}: ${problem.message}` });
  if (spec.dependsOn.includes(spec.name)) context.addIssue({ message: `dependsOn: ${spec.name} cannot depend on itself` });
  const problem = spec.cronRestart ? cronProblem(spec.cronRestart) : null;
  if (problem) context.addIssue({ message: `cronRestart: ${problem}` });
}

export const appSpecSchema = appSpecShape.superRefine(checkSpec);
/** A definition as a start request carries it: the environment it starts from comes once, with the request. */
const appDefinitionSchema = appSpecShape.omit('baseEnv').superRefine(checkSpec);

const regex = v.string().min(1).max(LIST_LIMITS.patternLength).refine(
  (source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  },
  'not a valid regular expression',
);
const unmanaged = v.strictObject({ match: regex, olderThanMs: ms });

const processRef = v.strictObject({ pid: v.number().int().positive(), startTime: v.number().int().nonnegative() });

const id = v.number().int();
const target = v.union([v.strictObject({ all: v.literal(true) }), v.strictObject({ names: v.array(appName).min(1) })]);

const requestSchema = v.discriminatedUnion('type', [
  v.strictObject({ id, type: v.literal('hello'), protocol: v.number(), version: v.string() }),
  v.strictObject({ id, type: v.literal('status') }),
  v.strictObject({ id, type: v.literal('ls') }),
  v.strictObject({ id, type: v.literal('show'), name: appName }),
  v.strictObject({ id, type: v.literal('start'), apps: v.array(appDefinitionSchema).min(1), env, ifRunning: v.enum(['refuse', 'replace', 'apply']) }),
  v.strictObject({ id, type: v.literal('start-saved'), names: v.array(appName).min(1).max(10_000), ifRunning: v.enum(['refuse', 'replace']) }),
  v.strictObject({ id, type: v.literal('notify-test'), app: appName.nullable() }),
  v.strictObject({ id, type: v.literal('save') }),
  v.strictObject({ id, type: v.literal('resurrect') }),
  v.strictObject({ id, type: v.literal('stop'), target }),
  v.strictObject({ id, type: v.literal('restart'), target }),
  v.strictObject({ id, type: v.literal('delete'), target }),
  v.strictObject({ id, type: v.literal('signal'), name: appName, signal: signalName }),
  v.strictObject({ id, type: v.literal('events'), app: appName.nullable(), limit: v.number().int().positive().max(10_000) }),
  v.strictObject({ id, type: v.literal('subscribe'), app: appName.nullable() }),
  v.strictObject({
    id,
    type: v.literal('reap'),
    options: v.strictObject({
      app: appName.nullable(),
      dryRun: v.boolean(),
      allHomes: v.boolean(),
      unmanaged: unmanaged.nullable(),
      only: v.array(processRef).max(LIST_LIMITS.reapPids).nullable(),
      graceMs: ms,
      caller: processRef,
    }),
  }),
  v.strictObject({
    id,
    type: v.literal('settings'),
    settings: v.strictObject({
      reapIntervalMs: ms.min(1000).optional(),
      unmanaged: v.array(unmanaged).max(LIST_LIMITS.unmanagedPatterns).optional(),
      notify: v.array(notifyHook).max(LIST_LIMITS.notifyHooks).optional(),
      guard: v
        .strictObject({
          minAvailableBytes: bytes.nullable(),
          minAvailablePercent: v.number().positive().max(100).nullable(),
          pressureSomeAvg10: v.number().positive().max(100).nullable(),
        })
        .nullable()
        .optional(),
      metrics: v
        .strictObject({ listen: v.string().max(100), allowPublic: v.boolean() })
        .superRefine((metrics, context) => {
          const problem = metricsProblem(metrics);
          if (problem) context.addIssue({ message: problem });
        })
        .nullable()
        .optional(),
    }),
  }),
  v.strictObject({ id, type: v.literal('kill') }),
  v.strictObject({ id, type: v.literal('daemon-stop') }),
  v.strictObject({ id, type: v.literal('flush'), target }),
]);

/** A saved definition read back from disk, validated as strictly as one from the socket. */
export function parseAppSpec(value: unknown): AppSpec | null {
  const result = appSpecSchema.safeParse(value);
  return result.ok ? (result.value as AppSpec) : null;
}

export type ParsedRequest = { ok: true; request: Request } | { ok: false; id: number | null; message: string };

export function parseRequest(value: unknown): ParsedRequest {
  const result = requestSchema.safeParse(value);
  if (result.ok) return { ok: true, request: result.value as Request };
  const raw = value as { id?: unknown; type?: unknown } | null;
  const requestId = typeof raw?.id === 'number' && Number.isInteger(raw.id) ? raw.id : null;
  const issue = result.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  return { ok: false, id: requestId, message: `invalid request${where}: ${issue?.message ?? 'unrecognised'}` };
}

/**
 * Whether a running app's definition is unchanged. The caller's environment (baseEnv) is left out: it
 * differs from shell to shell, and is taken when an app (re)starts; a change of the app's own `env` counts.
 */
export function sameDefinition(current: AppSpec, next: AppSpec): boolean {
  const { baseEnv: _a, ...a } = current;
  const { baseEnv: _b, ...b } = next;
  return isDeepStrictEqual(a, b);
}
