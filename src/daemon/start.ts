/**
 * Starting apps by request: `start` of definitions (new apps registered and on disk before the first
 * spawn, a failed start rolled back), `start <name>` of saved ones, and `resurrect` from the dump. Each
 * in dependency order; a running app is refused, replaced or left alone as the request asks.
 */
import { AgentpmError } from '../errors.js';
import type { AppSpec, IfRunning, ResurrectResult, StartResult, Target } from '../protocol.js';
import { App, type AppHost } from './app.js';
import { orderStart } from './dependencies.js';
import type { AppFeatures } from './features.js';
import { startOrder } from './order.js';
import { readDump } from './persistence.js';
import { upgradeSpec } from './registry.js';
import { parseAppSpec, sameDefinition } from './requests.js';

export interface StartContext {
  /** What the new apps act through (the supervisor). */
  host: AppHost;
  apps: Map<string, App>;
  features: Pick<AppFeatures, 'prepare' | 'ready'>;
  persist(): void;
  persistNow(): void;
  /** The apps named, or an unknown-app error. */
  resolve(target: Target): App[];
  log(app: App | null, message: string): void;
}

export async function startApps(context: StartContext, unordered: AppSpec[], ifRunning: IfRunning): Promise<StartResult> {
  const names = unordered.map((spec) => spec.name);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate) throw new AgentpmError('invalid-argument', `app name ${duplicate} appears twice in one start; names must be unique`);
  const preparing = context.features.prepare(unordered);
  if (preparing) await preparing;
  const specs = orderStart(unordered, context.apps);
  if (ifRunning === 'refuse') {
    const running = specs.filter((spec) => context.apps.get(spec.name)?.active);
    if (running.length > 0) {
      const list = running.map((spec) => spec.name).join(', ');
      throw new AgentpmError('already-running', `${list} already running; use \`agentpm restart ${list}\`, or start with --replace`);
    }
  }
  const result: StartResult = { apps: names, started: [], restarted: [], unchanged: [] };
  // Every new app is on disk, meant to run, before the first spawn: a daemon that dies half-way
  // through a 20-app config leaves none of them lost (the next daemon starts what did not start yet).
  const added = specs.filter((spec) => !context.apps.has(spec.name)).map((spec) => new App(spec, context.host));
  for (const app of added) {
    app.desired = 'running';
    context.apps.set(app.name, app);
  }
  if (added.length > 0) {
    try {
      context.persistNow();
    } catch (error) {
      for (const app of added) context.apps.delete(app.name);
      throw error;
    }
  }
  for (const spec of specs) {
    const fresh = added.find((app) => app.name === spec.name);
    if (fresh) {
      try {
        await fresh.start();
      } catch (error) {
        // A start that failed outright registers nothing, nor do the new apps after it (as if the
        // start had stopped there); what was queued behind them is refused.
        for (const app of added.slice(added.indexOf(fresh))) {
          if (app !== fresh && app.status !== 'stopped') continue;
          app.dispose();
          if (context.apps.get(app.name) === app) context.apps.delete(app.name);
        }
        context.persist();
        throw error;
      }
      result.started.push(spec.name);
      continue;
    }
    const existing = context.apps.get(spec.name);
    if (existing?.active) {
      if (ifRunning === 'apply' && sameDefinition(existing.spec, spec)) {
        result.unchanged.push(spec.name);
        continue;
      }
      // A new definition of a running app: its whole tree ends before the new one starts.
      await existing.restart(spec);
      result.restarted.push(spec.name);
    } else if (existing) {
      await existing.start(spec);
      result.started.push(spec.name);
    }
  }
  await context.features.ready(names); // once start answers, a change to a watched file is seen
  return result;
}

export async function startSavedApps(context: StartContext, names: string[], ifRunning: 'refuse' | 'replace'): Promise<StartResult> {
  const apps = context.resolve({ names });
  const running = apps.filter((app) => app.active).map((app) => app.name);
  if (ifRunning === 'refuse' && running.length > 0) {
    const list = running.join(', ');
    throw new AgentpmError('already-running', `${list} already running; use \`agentpm restart ${list}\``);
  }
  const result: StartResult = { apps: names, started: [], restarted: [], unchanged: [] };
  for (const app of apps) {
    if (app.active) {
      await app.restart();
      result.restarted.push(app.name);
    } else {
      await app.start();
      result.started.push(app.name);
    }
  }
  await context.features.ready(names);
  return result;
}

export async function resurrectApps(context: StartContext, dump: string): Promise<ResurrectResult> {
  const saved = { apps: readDump(dump) };
  const result: ResurrectResult = { file: dump, started: [], skipped: [] };
  // Dependencies first (dependsOn), whatever order the dump has them in.
  const dumped = saved.apps.filter((app) => app.desired === 'running').map((app) => ({ ...app, name: String(app.spec?.name) }));
  const wanted = startOrder(dumped, new Map(dumped.map((app) => [app.name, Array.isArray(app.spec?.dependsOn) ? app.spec.dependsOn : []])));
  for (const { spec } of wanted) {
    const parsed = parseAppSpec(upgradeSpec(spec));
    if (!parsed) {
      context.log(null, `resurrect: skipped an invalid saved definition (${String(spec?.name)})`);
      continue;
    }
    if (context.apps.get(parsed.name)?.active) {
      result.skipped.push(parsed.name);
      continue;
    }
    await startApps(context, [parsed], 'refuse');
    result.started.push(parsed.name);
  }
  return result;
}
