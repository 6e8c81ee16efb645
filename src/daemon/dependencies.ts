/**
 * `dependsOn` as the daemon applies it to its registered apps (the pure rules are in order.ts): which
 * dependencies an app still waits for, the checks of a start request against the apps already known, and
 * the refusal of a delete that would leave an app depending on nothing.
 */
import { AgentpmError } from '../errors.js';
import type { AppSpec } from '../protocol.js';
import { dependentsOf, describeCycle, findCycle, graphOf, startOrder, unknownDependencies, type Graph } from './order.js';
import { isReady, type ReadinessFacts } from './readiness.js';

interface Registered extends ReadinessFacts {
  readonly name: string;
  readonly spec: ReadinessFacts['spec'] & { readonly dependsOn: readonly string[] };
}

export function graphOfApps(apps: Iterable<Registered>): Graph {
  return graphOf([...apps].map((app) => ({ name: app.name, dependsOn: app.spec.dependsOn })));
}

/** The dependencies of `app` that are not ready now (an unknown name never is). */
export function notReady(app: Registered, apps: ReadonlyMap<string, Registered>, now: number): string[] {
  return app.spec.dependsOn.filter((name) => {
    const dependency = apps.get(name);
    return dependency === undefined || !isReady(dependency, now);
  });
}

/**
 * A start request's apps, checked against the apps the daemon knows: every dependency must be in the
 * request or registered already (a program may start `gateway`, then `bot` depending on it), and the
 * whole graph must stay free of cycles. Returned in start order, dependencies first.
 */
export function orderStart(specs: AppSpec[], registered: ReadonlyMap<string, Registered>): AppSpec[] {
  const graph = new Map(graphOfApps(registered.values()));
  for (const spec of specs) graph.set(spec.name, spec.dependsOn);
  const requested = new Set(specs.map((spec) => spec.name));
  const unknown = unknownDependencies(graph).filter((entry) => requested.has(entry.app));
  if (unknown.length > 0) {
    const list = unknown.map((entry) => `${entry.app} depends on ${entry.missing.join(', ')}`).join('; ');
    throw new AgentpmError('invalid-config', `${list}, which no app has; start those apps first (or in the same request), or fix dependsOn. Nothing was started.`);
  }
  const cycle = findCycle(graph);
  if (cycle) throw new AgentpmError('invalid-config', `dependsOn forms a cycle: ${describeCycle(cycle)}; no app of it could ever start. Nothing was started.`);
  return startOrder(specs, graph);
}

/** A delete must take the apps that depend on what it deletes with it. */
export function refuseOrphaningDelete(names: string[], registered: ReadonlyMap<string, Registered>): void {
  const left = dependentsOf(names, graphOfApps(registered.values()));
  if (left.length === 0) return;
  const list = left.map((entry) => `${entry.app} depends on ${entry.on.join(', ')}`).join('; ');
  const all = [...new Set([...names, ...left.map((entry) => entry.app)])].join(' ');
  throw new AgentpmError('invalid-argument', `${list}: deleting it would leave ${left.length === 1 ? 'that app' : 'those apps'} waiting forever. Delete them together (agentpm delete ${all}), or restart ${left.length === 1 ? 'it' : 'them'} without the dependency first. Nothing was deleted.`);
}
