/**
 * The daemon's request schema as it was written with zod, before src/validate.ts replaced zod in the
 * daemon: the reference that test/unit-validate.test.ts compares the daemon's answers with.
 */
import { constants } from 'node:os';
import { z } from 'zod';
import { kernelLimitProblems, MAX_CPU_PERCENT, MIN_CPU_PERCENT, type KernelLimitSpec } from '../../src/cgroup/limits.js';
import { metricsProblem } from '../../src/config/metrics.js';
import { MAX_COUNT, MAX_DURATION_MS, MAX_SIZE_BYTES } from '../../src/config/units.js';
import { MAX_LOG_KEEP, MIN_LOG_MAX_SIZE } from '../../src/config/defaults.js';
import { GUARD_ACTIONS, LIMIT_ACTIONS, LIST_LIMITS, MEMORY_METRICS, NOTIFY_KINDS, type AppSpec, type CronRestart, type Request } from '../../src/protocol.js';
import { cronProblem } from '../../src/cron.js';

const signalName = z.string().refine((name) => name in constants.signals, {
  message: 'unknown signal name (expected e.g. SIGTERM, SIGINT, SIGHUP, SIGUSR1)',
});
const appName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'app names are 1-64 characters of letters, digits, . _ - (not starting with . _ -)');
const ms = z.number().int().nonnegative().max(MAX_DURATION_MS);
// The same bounds as a config's: whatever passes the CLI passes here, and a hand-made request is held to them too.
const count = z.number().int().positive().max(MAX_COUNT);
const bytes = z.number().int().positive().max(MAX_SIZE_BYTES);
const env = z.record(z.string(), z.string());

const notifyHook = z.strictObject({
  command: z.string().min(1).nullable(),
  webhook: z.string().url().nullable(),
  events: z.array(z.enum(NOTIFY_KINDS)).nullable(),
  timeoutMs: ms.min(1),
});

export const logPolicySchema = z.strictObject({
  maxSizeBytes: bytes.min(MIN_LOG_MAX_SIZE),
  keep: z.number().int().min(0).max(MAX_LOG_KEEP),
  compress: z.boolean(),
});

const appSpecShape = z.strictObject({
  name: appName,
  script: z.string().min(1),
  args: z.array(z.string()),
  cwd: z.string().min(1),
  interpreter: z.string().min(1).nullable(),
  interpreterArgs: z.array(z.string()),
  env,
  baseEnv: env,
  stopSignal: signalName,
  killTimeoutMs: ms,
  autorestart: z.boolean(),
  restartDelayMs: ms,
  maxRestartDelayMs: ms,
  minUptimeMs: ms,
  readyAfterMs: ms,
  maxRestarts: count.nullable(),
  restartWindowMs: ms,
  maxMemoryBytes: bytes.nullable(),
  maxChildren: z.number().int().nonnegative().max(MAX_COUNT).nullable(),
  hardMemoryBytes: z.union([bytes, z.literal(false)]).nullable(),
  maxTasks: z.union([count, z.literal(false)]).nullable(),
  maxCpuPercent: z.number().min(MIN_CPU_PERCENT).max(MAX_CPU_PERCENT).nullable(),
  memoryMetric: z.enum(MEMORY_METRICS),
  memoryBreachTicks: count,
  childrenBreachTicks: count,
  onLimit: z.enum(LIMIT_ACTIONS),
  reap: z.boolean(),
  watch: z.array(z.string().min(1)).max(LIST_LIMITS.watchPaths).nullable(),
  ignoreWatch: z.array(z.string()).max(LIST_LIMITS.ignorePatterns),
  watchDelayMs: ms,
  notify: z.array(notifyHook).max(LIST_LIMITS.notifyHooks),
  health: z
    .strictObject({
      http: z.string().url().nullable(),
      command: z.string().min(1).nullable(),
      intervalMs: ms.min(100),
      timeoutMs: ms.min(50),
      retries: count,
      startPeriodMs: ms,
    })
    .nullable(),
  hangTimeoutMs: ms.min(1).nullable(),
  priority: z.number().int(),
  guardAction: z.enum(GUARD_ACTIONS),
  oomScoreAdj: z.number().int().min(-1000).max(1000).nullable(),
  dependsOn: z.array(appName).max(LIST_LIMITS.dependsOn),
  // The expression itself is checked in checkSpec (croner is loaded only for a spec that has one).
  cronRestart: z.strictObject({ schedule: z.string().min(1).max(200), timezone: z.string().min(1).max(100).nullable() }).nullable(),
  logs: logPolicySchema,
});

/** The rules relating two fields, and the ones zod cannot see, the same as a config file's (a hard memory cap below maxMemory...). */
function checkSpec(spec: KernelLimitSpec & { name: string; dependsOn: string[]; cronRestart: CronRestart | null }, context: z.RefinementCtx): void {
  for (const problem of kernelLimitProblems(spec)) context.addIssue({ code: 'custom', message: `${problem.field}: ${problem.message}` });
  if (spec.dependsOn.includes(spec.name)) context.addIssue({ code: 'custom', message: `dependsOn: ${spec.name} cannot depend on itself` });
  const problem = spec.cronRestart ? cronProblem(spec.cronRestart) : null;
  if (problem) context.addIssue({ code: 'custom', message: `cronRestart: ${problem}` });
}

export const appSpecSchema = appSpecShape.superRefine(checkSpec);
/** A definition as a start request carries it: the environment it starts from comes once, with the request. */
const appDefinitionSchema = appSpecShape.omit({ baseEnv: true }).superRefine(checkSpec);

const regex = z.string().min(1).max(LIST_LIMITS.patternLength).refine(
  (source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);
const unmanaged = z.strictObject({ match: regex, olderThanMs: ms });

const processRef = z.strictObject({ pid: z.number().int().positive(), startTime: z.number().int().nonnegative() });

const id = z.number().int();
const target = z.union([z.strictObject({ all: z.literal(true) }), z.strictObject({ names: z.array(appName).min(1) })]);

const requestSchema = z.discriminatedUnion('type', [
  z.strictObject({ id, type: z.literal('hello'), protocol: z.number(), version: z.string() }),
  z.strictObject({ id, type: z.literal('status') }),
  z.strictObject({ id, type: z.literal('ls') }),
  z.strictObject({ id, type: z.literal('show'), name: appName }),
  z.strictObject({ id, type: z.literal('start'), apps: z.array(appDefinitionSchema).min(1), env, ifRunning: z.enum(['refuse', 'replace', 'apply']) }),
  z.strictObject({ id, type: z.literal('start-saved'), names: z.array(appName).min(1).max(10_000), ifRunning: z.enum(['refuse', 'replace']) }),
  z.strictObject({ id, type: z.literal('notify-test'), app: appName.nullable() }),
  z.strictObject({ id, type: z.literal('save') }),
  z.strictObject({ id, type: z.literal('resurrect') }),
  z.strictObject({ id, type: z.literal('stop'), target }),
  z.strictObject({ id, type: z.literal('restart'), target }),
  z.strictObject({ id, type: z.literal('delete'), target }),
  z.strictObject({ id, type: z.literal('signal'), name: appName, signal: signalName }),
  z.strictObject({ id, type: z.literal('events'), app: appName.nullable(), limit: z.number().int().positive().max(10_000) }),
  z.strictObject({ id, type: z.literal('subscribe'), app: appName.nullable() }),
  z.strictObject({
    id,
    type: z.literal('reap'),
    options: z.strictObject({
      app: appName.nullable(),
      dryRun: z.boolean(),
      allHomes: z.boolean(),
      unmanaged: unmanaged.nullable(),
      only: z.array(processRef).max(LIST_LIMITS.reapPids).nullable(),
      graceMs: ms,
      caller: processRef,
    }),
  }),
  z.strictObject({
    id,
    type: z.literal('settings'),
    settings: z.strictObject({
      reapIntervalMs: ms.min(1000).optional(),
      unmanaged: z.array(unmanaged).max(LIST_LIMITS.unmanagedPatterns).optional(),
      notify: z.array(notifyHook).max(LIST_LIMITS.notifyHooks).optional(),
      guard: z
        .strictObject({
          minAvailableBytes: bytes.nullable(),
          minAvailablePercent: z.number().positive().max(100).nullable(),
          pressureSomeAvg10: z.number().positive().max(100).nullable(),
        })
        .nullable()
        .optional(),
      metrics: z
        .strictObject({ listen: z.string().max(100), allowPublic: z.boolean() })
        .superRefine((metrics, context) => {
          const problem = metricsProblem(metrics);
          if (problem) context.addIssue({ code: 'custom', message: problem });
        })
        .nullable()
        .optional(),
    }),
  }),
  z.strictObject({ id, type: z.literal('kill') }),
  z.strictObject({ id, type: z.literal('daemon-stop') }),
  z.strictObject({ id, type: z.literal('flush'), target }),
]);

/** A saved definition read back from disk, validated as strictly as one from the socket. */
export function parseAppSpec(value: unknown): AppSpec | null {
  const result = appSpecSchema.safeParse(value);
  return result.success ? (result.data as AppSpec) : null;
}

export type ParsedRequest = { ok: true; request: Request } | { ok: false; id: number | null; message: string };

export function parseRequest(value: unknown): ParsedRequest {
  const result = requestSchema.safeParse(value);
  if (result.success) return { ok: true, request: result.data as Request };
  const raw = value as { id?: unknown; type?: unknown } | null;
  const requestId = typeof raw?.id === 'number' && Number.isInteger(raw.id) ? raw.id : null;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  return { ok: false, id: requestId, message: `invalid request${where}: ${issue?.message ?? 'unrecognised'}` };
}

