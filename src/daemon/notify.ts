/**
 * Alerting: the event stream, mapped to a small vocabulary (NOTIFY_KINDS) and delivered to the hooks of
 * the app and the global ones, by a shell command (event JSON on stdin, AGENTPM_EVENT_* variables) or a
 * webhook (POSTed JSON, retried with backoff).
 *
 * Supervision never waits for an alert: the bus calls `handle` synchronously, which only queues work.
 * Every delivery is bounded (a command is killed with its whole process group after the hook's timeout;
 * a webhook's attempts and pauses all fit in it), at most MAX_CONCURRENT run at once, and at most
 * MAX_QUEUED wait. A failure is recorded as a `notify-failed` event, which is never itself notified.
 *
 * A crash loop sends a summary, not a flood: per (app, kind) at most `limit` deliveries per window;
 * events beyond that are counted and one summary ("12 more crash events for bot in the last 60 s") is
 * delivered when the window ends. While a loop goes on, each further window sends one summary only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeEventText } from '../cli/render.js';
import { parseDuration } from '../config/units.js';
import { maskText, maskWebhook } from '../secrets.js';
import type { AgentEvent, AppSpec, NotifyHook, NotifyKind, NotifyTestResult } from '../protocol.js';
import { VERSION } from '../version.js';
import type { EventBus } from './events.js';
import { INSTANCE_TAGS } from './spawn.js';

export const DEFAULT_NOTIFY_RATE = { limit: 3, windowMs: 60_000 } as const;
const MAX_CONCURRENT = 8;
const MAX_QUEUED = 100;
const WEBHOOK_RETRY = { attempts: 3, baseDelayMs: 500 } as const;
/** An exit for memory pressure right after the guard's own event (or the other way round) is one alert. */
const MEMORY_PRESSURE_DEDUP_MS = 60_000;
const STDERR_KEPT = 400;

export type NotifyFailReason = 'exit-code' | 'timeout' | 'http-error' | 'network-error' | 'spawn-failed' | 'queue-full';

export type DeliveryOutcome = { ok: true; message: string } | { ok: false; reason: NotifyFailReason | 'cancelled'; message: string };

/** What a hook receives: the JSON on a command's stdin, the body of a webhook's POST. */
export interface NotifyPayload {
  kind: NotifyKind;
  app: string | null;
  instance: string | null;
  /** ISO 8601 */
  at: string;
  reason: string | null;
  /** One line for people, e.g. "bot: exited: crashed (code 1) after 2s". */
  message: string;
  /** The message with the host in front, for chat webhooks that read a `text` field (Slack, Mattermost). */
  text: string;
  host: string;
  /** True for `agentpm notify test`: nothing happened. */
  test: boolean;
  /** A summary of events held back by the rate limit: how many, over which window. */
  coalesced: { count: number; windowMs: number } | null;
  /** The event itself (for a summary, the last one held back). */
  event: AgentEvent;
}

// ---- pure parts ----

const EXIT_KINDS: Partial<Record<string, NotifyKind>> = {
  crashed: 'crash',
  'oom-killed': 'oom-killed',
  'killed-by-signal': 'killed-by-signal',
  'health-failed': 'health-failed',
  hung: 'hung',
  'memory-pressure': 'memory-pressure',
  // Planned, but a restart all the same: a hook listening to every kind hears of it (filter it out with `events`).
  scheduled: 'scheduled-restart',
};

/** The alert kind of an event, or null when events of its sort are not alerted on. */
export function notifyKindOf(event: AgentEvent): NotifyKind | null {
  switch (event.type) {
    case 'exit':
      return (event.reason !== null ? EXIT_KINDS[event.reason] : undefined) ?? null;
    case 'guard':
      return event.reason === 'memory-pressure' ? 'memory-pressure' : null;
    case 'limit-breach':
      return event.data['action'] === 'restart' || event.data['action'] === 'contain' ? 'limit-restart' : null;
    case 'backoff':
      return 'backoff';
    case 'give-up':
      return 'errored';
    case 'orphans-reaped':
      return 'orphans-reaped';
    default:
      // notify-failed above all: a failing hook must never alert about itself, in a loop.
      return null;
  }
}

/** The app an alert is about: the event's, or for the guard, its victim. */
export function notifyAppOf(event: AgentEvent): string | null {
  if (event.app !== null) return event.app;
  const victim = event.data['victim'];
  return event.type === 'guard' && typeof victim === 'string' ? victim : null;
}

/** The hooks an alert of this kind goes to: the app's, then the global ones; a hook listed twice gets it once. */
export function hooksFor(kind: NotifyKind | null, appHooks: readonly NotifyHook[], globalHooks: readonly NotifyHook[]): NotifyHook[] {
  const seen = new Set<string>();
  return [...appHooks, ...globalHooks].filter((hook) => {
    if (kind !== null && hook.events !== null && !hook.events.includes(kind)) return false;
    const key = JSON.stringify([hook.command, hook.webhook, hook.events, hook.timeoutMs]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function buildPayload(event: AgentEvent, kind: NotifyKind, options: { host?: string; test?: boolean; coalesced?: NotifyPayload['coalesced'] } = {}): NotifyPayload {
  const host = options.host ?? hostname();
  const app = notifyAppOf(event);
  const coalesced = options.coalesced ?? null;
  let message: string;
  if (coalesced) {
    const count = coalesced.count;
    message = `${count} more ${kind} event${count === 1 ? '' : 's'}${app ? ` for ${app}` : ''} in the last ${describeWindow(coalesced.windowMs)}`;
  } else {
    message = `${app ?? 'agentpm'}: ${oneLine(describeEventText(event))}`;
  }
  if (options.test) message = `TEST (agentpm notify test, nothing happened): ${message}`;
  return {
    kind,
    app,
    instance: coalesced ? null : event.instance,
    at: coalesced ? new Date().toISOString() : event.at,
    reason: coalesced ? 'coalesced' : event.reason,
    message,
    text: `agentpm on ${host}: ${message}`,
    host,
    test: options.test === true,
    coalesced,
    event,
  };
}

function describeWindow(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * The environment of a command hook: the given base without the instance tags (a hook's process must
 * never be taken for, or attributed to, an app's process), plus AGENTPM_EVENT_*.
 */
export function hookEnv(base: Record<string, string | undefined>, payload: NotifyPayload, home: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (value !== undefined) env[key] = value;
  for (const tag of INSTANCE_TAGS) delete env[tag];
  env['AGENTPM_HOME'] = home;
  env['AGENTPM_EVENT_TYPE'] = payload.kind;
  env['AGENTPM_EVENT_APP'] = payload.app ?? '';
  env['AGENTPM_EVENT_REASON'] = payload.reason ?? '';
  env['AGENTPM_EVENT_AT'] = payload.at;
  env['AGENTPM_EVENT_INSTANCE'] = payload.instance ?? '';
  env['AGENTPM_EVENT_MESSAGE'] = payload.message;
  return env;
}

/** How a hook is named in results and events: webhook URLs and URLs in commands often carry tokens, so only their hosts are shown. */
export function hookLabel(hook: NotifyHook, target: 'command' | 'webhook'): string {
  if (target === 'webhook') return `webhook ${maskWebhook(hook.webhook ?? '')}`;
  const command = maskText(hook.command ?? '', { urls: 'host-only' });
  return `command ${command.length > 80 ? `${command.slice(0, 79)}…` : command}`;
}

/** `AGENTPM_NOTIFY_RATE=5/2m`: at most 5 deliveries per app and kind every 2 minutes. */
export function parseNotifyRate(text: string | undefined): { limit: number; windowMs: number } {
  const match = text?.trim().match(/^(\d+)\s*\/\s*(\S+)$/);
  if (!match) return { ...DEFAULT_NOTIFY_RATE };
  const limit = Number(match[1]);
  const window = parseDuration(match[2] ?? '');
  if (!window.ok || window.value < 10 || limit < 1) return { ...DEFAULT_NOTIFY_RATE };
  return { limit, windowMs: window.value };
}

export interface Coalesced<T> {
  key: string;
  count: number;
  windowMs: number;
  /** The last item held back. */
  last: T;
}

/**
 * Per key, at most `limit` items per window; the rest are held back and counted. A window opens with
 * the first item. When it ends with items held back, a summary is due, and the next window starts at
 * once already full: while a loop goes on, each window gives one summary and nothing else. A window
 * that ends with nothing held back is forgotten. Pure: the caller passes the time.
 */
export class RateLimiter<T> {
  private readonly windows = new Map<string, { endsAt: number; delivered: number; held: number; last: T | null }>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
  ) {}

  /** True: deliver the item now. False: it was held back (counted for the summary). */
  admit(key: string, item: T, now: number): boolean {
    let window = this.windows.get(key);
    if (!window || now >= window.endsAt + this.windowMs) {
      // No window, or one so stale that its end was never processed: start afresh.
      window = { endsAt: now + this.windowMs, delivered: 0, held: 0, last: null };
      this.windows.set(key, window);
    }
    if (window.delivered < this.limit) {
      window.delivered += 1;
      return true;
    }
    window.held += 1;
    window.last = item;
    return false;
  }

  /** Ends every window that is over by `now`; one summary for each that held items back. */
  expire(now: number): Coalesced<T>[] {
    const due: Coalesced<T>[] = [];
    for (const [key, window] of this.windows) {
      if (now < window.endsAt) continue;
      if (window.held > 0 && window.last !== null) {
        due.push({ key, count: window.held, windowMs: this.windowMs, last: window.last });
        this.windows.set(key, { endsAt: now + this.windowMs, delivered: this.limit, held: 0, last: null });
      } else {
        this.windows.delete(key);
      }
    }
    return due;
  }

  /** When the next window ends, or null when none is open. */
  nextExpiry(): number | null {
    let next: number | null = null;
    for (const window of this.windows.values()) if (next === null || window.endsAt < next) next = window.endsAt;
    return next;
  }

  get openWindows(): number {
    return this.windows.size;
  }
}

// ---- deliveries ----

/**
 * Runs `sh -c command` in its own process group with the JSON on stdin. After `timeoutMs` (or on
 * cancel) the whole group is SIGKILLed; when the shell exits, whatever it left in its group goes too.
 */
export function runCommandHook(command: string, input: string, env: Record<string, string>, cwd: string, timeoutMs: number, cancel: AbortSignal): Promise<DeliveryOutcome> {
  if (cancel.aborted) return Promise.resolve({ ok: false, reason: 'cancelled', message: 'the daemon is shutting down' });
  return new Promise((resolve) => {
    const started = Date.now();
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['pipe', 'ignore', 'pipe'], detached: true });
    } catch (error) {
      resolve({ ok: false, reason: 'spawn-failed', message: `cannot run /bin/sh: ${(error as Error).message}` });
      return;
    }
    let stderr = '';
    let timedOut = false;
    let settled = false;
    // The group is the shell's own (detached: setsid, so pgid = its pid) and signalled without a /proc
    // check: while any member lives, the kernel does not hand that number out again, so the signal
    // reaches the hook's processes or nothing. (An empty group's number is free for reuse only after
    // the shell was reaped, and this runs in the callback of that very reaping.)
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is already empty
      }
    };
    const onCancel = (): void => killGroup();
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const finish = (outcome: DeliveryOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cancel.removeEventListener('abort', onCancel);
      child.stderr?.destroy();
      resolve(outcome);
    };
    cancel.addEventListener('abort', onCancel, { once: true });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEPT);
    });
    child.stderr?.on('error', () => undefined);
    child.stdin?.on('error', () => undefined); // a command that does not read stdin closes it: EPIPE is fine
    child.stdin?.end(input);
    child.on('error', (error) => {
      killGroup();
      finish({ ok: false, reason: 'spawn-failed', message: `cannot run the command: ${error.message}` });
    });
    child.on('exit', (code, signal) => {
      // The shell is done: nothing it started may outlive the delivery (the group is empty otherwise).
      killGroup();
      const tail = oneLine(stderr).slice(-200);
      const elapsed = Date.now() - started;
      if (cancel.aborted) finish({ ok: false, reason: 'cancelled', message: 'killed: the daemon is shutting down' });
      else if (timedOut) finish({ ok: false, reason: 'timeout', message: `did not finish within ${timeoutMs} ms; killed${tail ? ` (stderr: ${tail})` : ''}` });
      else if (code === 0) finish({ ok: true, message: `exit 0 in ${elapsed} ms` });
      else finish({ ok: false, reason: 'exit-code', message: `${code !== null ? `exited with code ${code}` : `killed by ${String(signal)}`}${tail ? `: ${tail}` : ''}` });
    });
  });
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
}

/**
 * POSTs the JSON. Network errors, 5xx and 429 are retried after baseDelayMs, doubling; every attempt and
 * pause fits within `timeoutMs` from the start, and an attempt still running then is cut.
 */
export async function postWebhook(url: string, body: string, timeoutMs: number, cancel: AbortSignal, retry: RetryPolicy = WEBHOOK_RETRY): Promise<DeliveryOutcome> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: DeliveryOutcome = { ok: false, reason: 'timeout', message: `no answer within ${timeoutMs} ms` };
  for (let attempt = 1; attempt <= retry.attempts; attempt += 1) {
    if (cancel.aborted) return { ok: false, reason: 'cancelled', message: 'the daemon is shutting down' };
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const timeout = AbortSignal.timeout(remaining);
    let retryable: boolean;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `agentpm/${VERSION}` },
        body,
        signal: AbortSignal.any([cancel, timeout]),
      });
      if (response.ok) {
        await response.body?.cancel().catch(() => undefined);
        return { ok: true, message: `HTTP ${response.status} in ${Date.now() - started} ms${attempt > 1 ? ` (attempt ${attempt})` : ''}` };
      }
      const snippet = await bodySnippet(response);
      last = { ok: false, reason: 'http-error', message: `HTTP ${response.status}${snippet ? `: ${snippet}` : ''} (attempt ${attempt} of ${retry.attempts})` };
      retryable = response.status >= 500 || response.status === 429;
    } catch (error) {
      if (cancel.aborted) return { ok: false, reason: 'cancelled', message: 'the daemon is shutting down' };
      if (timeout.aborted) return { ok: false, reason: 'timeout', message: `no answer within ${timeoutMs} ms (attempt ${attempt} of ${retry.attempts}); cut` };
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      last = { ok: false, reason: 'network-error', message: `${cause?.code ?? cause?.message ?? (error as Error).message} (attempt ${attempt} of ${retry.attempts})` };
      retryable = true;
    }
    if (!retryable || attempt === retry.attempts) return last;
    const pause = retry.baseDelayMs * 2 ** (attempt - 1);
    if (Date.now() + pause >= deadline) return { ...last, message: `${last.message}; no time left to retry within ${timeoutMs} ms` };
    try {
      await sleep(pause, undefined, { signal: cancel });
    } catch {
      return { ok: false, reason: 'cancelled', message: 'the daemon is shutting down' };
    }
  }
  return last;
}

async function bodySnippet(response: Response): Promise<string> {
  try {
    const reader = response.body?.getReader();
    if (!reader) return '';
    const { value } = await reader.read();
    await reader.cancel().catch(() => undefined);
    return oneLine(Buffer.from(value ?? new Uint8Array()).toString('utf8')).slice(0, 200);
  } catch {
    return '';
  }
}

// ---- the notifier ----

export interface NotifierContext {
  home: string;
  /** The current definition of an app, if the daemon knows it. */
  specOf(app: string): AppSpec | undefined;
  /** The global hooks (DaemonSettings.notify), read at each delivery. */
  globalHooks(): readonly NotifyHook[];
  log(message: string): void;
}

export interface NotifierOptions {
  rate?: { limit: number; windowMs: number };
  maxConcurrent?: number;
  maxQueued?: number;
  retry?: RetryPolicy;
  now?: () => number;
}

interface Delivery {
  label: string;
  payload: NotifyPayload;
  run: () => Promise<DeliveryOutcome>;
}

export class Notifier {
  private readonly limiter: RateLimiter<AgentEvent>;
  private readonly queue: Delivery[] = [];
  private readonly closing = new AbortController();
  private readonly recentPressure = new Map<string, number>();
  private readonly unsubscribe: () => void;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly retry: RetryPolicy;
  private readonly now: () => number;
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | null = null;

  constructor(
    private readonly events: EventBus,
    private readonly context: NotifierContext,
    options: NotifierOptions = {},
  ) {
    const rate = options.rate ?? DEFAULT_NOTIFY_RATE;
    this.limiter = new RateLimiter(rate.limit, rate.windowMs);
    this.maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT;
    this.maxQueued = options.maxQueued ?? MAX_QUEUED;
    this.retry = options.retry ?? WEBHOOK_RETRY;
    this.now = options.now ?? Date.now;
    this.unsubscribe = events.subscribe((event) => this.handle(event));
  }

  /** Deliveries running or waiting. */
  get pending(): number {
    return this.running + this.queue.length;
  }

  /** Called by the bus for every event: decides and queues, never waits. */
  handle(event: AgentEvent): void {
    if (this.closing.signal.aborted) return;
    const kind = notifyKindOf(event);
    if (kind === null) return;
    const app = notifyAppOf(event);
    const hooks = this.hooks(kind, app);
    if (hooks.length === 0) return;
    const now = this.now();
    if (kind === 'memory-pressure' && this.seenPressure(app, now)) return;
    this.flushSummaries(now);
    if (this.limiter.admit(`${app ?? ''}\0${kind}`, event, now)) this.dispatch(buildPayload(event, kind), hooks);
    this.armTimer();
  }

  /** `agentpm notify test`: a sample through every hook of the app (or only the global ones), awaited; no rate limit. */
  async test(app: string | null): Promise<NotifyTestResult> {
    const spec = app !== null ? this.context.specOf(app) : undefined;
    const hooks = hooksFor(null, spec?.notify ?? [], this.context.globalHooks());
    const sample: AgentEvent = {
      type: 'exit',
      app,
      instance: 'notify-test',
      at: new Date(this.now()).toISOString(),
      reason: 'crashed',
      data: { code: 1, signal: null, uptimeMs: 0, leftovers: 0, test: true, message: 'a sample event sent by `agentpm notify test`' },
    };
    const deliveries = await Promise.all(
      hooks.flatMap((hook) => {
        // A hook that only listens to other kinds still gets the sample, as one of its own kinds.
        const kind: NotifyKind = hook.events === null || hook.events.includes('crash') ? 'crash' : (hook.events[0] ?? 'crash');
        const payload = buildPayload(sample, kind, { test: true });
        return this.targets(hook, payload).map(async ({ label, run }) => {
          const outcome = await run();
          return { hook: label, ok: outcome.ok, message: outcome.message };
        });
      }),
    );
    return { deliveries };
  }

  /** Stops alerting: timers cleared, waiting deliveries dropped, running ones cut (command groups killed). */
  close(): void {
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.closing.abort();
  }

  private hooks(kind: NotifyKind, app: string | null): NotifyHook[] {
    const spec = app !== null ? this.context.specOf(app) : undefined;
    return hooksFor(kind, spec?.notify ?? [], this.context.globalHooks());
  }

  /** The guard announces before it acts, so its event is the one delivered and the exit that follows is not. */
  private seenPressure(app: string | null, now: number): boolean {
    for (const [key, at] of this.recentPressure) if (now - at > MEMORY_PRESSURE_DEDUP_MS) this.recentPressure.delete(key);
    const key = app ?? '';
    if (this.recentPressure.has(key)) {
      this.recentPressure.delete(key);
      return true;
    }
    this.recentPressure.set(key, now);
    return false;
  }

  private flushSummaries(now: number): void {
    for (const summary of this.limiter.expire(now)) {
      const kind = notifyKindOf(summary.last);
      if (kind === null) continue;
      const hooks = this.hooks(kind, notifyAppOf(summary.last));
      if (hooks.length > 0) this.dispatch(buildPayload(summary.last, kind, { coalesced: { count: summary.count, windowMs: summary.windowMs } }), hooks);
    }
  }

  private armTimer(): void {
    const next = this.limiter.nextExpiry();
    if (next === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === null || this.closing.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = null;
      this.flushSummaries(this.now());
      this.armTimer();
    }, Math.max(0, next - this.now()));
    this.timer.unref();
  }

  private dispatch(payload: NotifyPayload, hooks: NotifyHook[]): void {
    for (const hook of hooks) {
      for (const delivery of this.targets(hook, payload)) {
        if (this.queue.length >= this.maxQueued) {
          const message = `dropped: ${this.maxQueued} deliveries already waiting (${payload.message})`;
          this.context.log(`alert ${delivery.label}: ${message}`);
          // Not from inside the bus's own emit: the other subscribers see the triggering event first.
          queueMicrotask(() => this.failed(delivery, 'queue-full', message));
          continue;
        }
        this.queue.push(delivery);
      }
    }
    this.pump();
  }

  private targets(hook: NotifyHook, payload: NotifyPayload): Delivery[] {
    const json = JSON.stringify(payload);
    const cancel = this.closing.signal;
    const deliveries: Delivery[] = [];
    if (hook.command !== null) {
      const command = hook.command;
      deliveries.push({
        label: hookLabel(hook, 'command'),
        payload,
        run: () => {
          const { env, cwd } = this.commandSetting(payload.app);
          return runCommandHook(command, json, hookEnv(env, payload, this.context.home), cwd, hook.timeoutMs, cancel);
        },
      });
    }
    if (hook.webhook !== null) {
      const url = hook.webhook;
      deliveries.push({ label: hookLabel(hook, 'webhook'), payload, run: () => postWebhook(url, json, hook.timeoutMs, cancel, this.retry) });
    }
    return deliveries;
  }

  /**
   * A command runs with the daemon's environment, over it the app's (the shell `agentpm start` ran in and
   * the app's `env`, so a SLACK_WEBHOOK_URL exported there is seen), in the app's cwd; without an app,
   * in the home.
   */
  private commandSetting(app: string | null): { env: Record<string, string | undefined>; cwd: string } {
    const spec = app !== null ? this.context.specOf(app) : undefined;
    const env = { ...process.env, ...spec?.baseEnv, ...spec?.env };
    const cwd = spec && existsSync(spec.cwd) ? spec.cwd : this.context.home;
    return { env, cwd };
  }

  private pump(): void {
    while (this.running < this.maxConcurrent && this.queue.length > 0) {
      const delivery = this.queue.shift() as Delivery;
      this.running += 1;
      delivery
        .run()
        .catch((error: unknown): DeliveryOutcome => ({ ok: false, reason: 'spawn-failed', message: (error as Error).message }))
        .then((outcome) => {
          if (!outcome.ok && outcome.reason !== 'cancelled') this.failed(delivery, outcome.reason, outcome.message);
        })
        .finally(() => {
          this.running -= 1;
          this.pump();
        });
    }
  }

  private failed(delivery: Delivery, reason: NotifyFailReason, message: string): void {
    if (this.closing.signal.aborted) return;
    const { payload } = delivery;
    this.context.log(`alert ${delivery.label} failed (${payload.kind}${payload.app ? ` of ${payload.app}` : ''}): ${message}`);
    this.events.emit('notify-failed', payload.app, payload.instance, reason, { hook: delivery.label, kind: payload.kind, message });
  }
}
