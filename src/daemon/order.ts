/**
 * Start order (`dependsOn`), as pure functions over names: the same rules for a config file (checked when
 * it is resolved) and for the daemon (which also knows the apps already registered).
 *
 * - Starts follow the dependencies: an app is listed after everything it depends on.
 * - Stops go the other way, in waves: the apps nothing (still running) depends on first, in parallel, then
 *   the next layer. Apps without dependencies form one wave, so `stop all` of them is as parallel as ever.
 * - A cycle is an error that names it (`a → b → a`), as is a dependency on an app nobody defines.
 */

export interface DependencyNode {
  name: string;
  dependsOn: readonly string[];
}

export type Graph = ReadonlyMap<string, readonly string[]>;

export function graphOf(nodes: Iterable<DependencyNode>): Map<string, readonly string[]> {
  const graph = new Map<string, readonly string[]>();
  for (const node of nodes) graph.set(node.name, node.dependsOn);
  return graph;
}

/** Each app's dependencies that the graph does not have, e.g. `[{ app: 'bot', missing: ['gatway'] }]`. */
export function unknownDependencies(graph: Graph): { app: string; missing: string[] }[] {
  const found: { app: string; missing: string[] }[] = [];
  for (const [app, dependencies] of graph) {
    const missing = dependencies.filter((name) => !graph.has(name));
    if (missing.length > 0) found.push({ app, missing });
  }
  return found;
}

/**
 * A cycle, as the path that closes it (`['a', 'b', 'a']`), or null. Dependencies outside the graph are
 * ignored here (unknownDependencies reports them). Iterative, so a long chain cannot overflow the stack.
 */
export function findCycle(graph: Graph): string[] | null {
  const done = new Set<string>();
  for (const start of graph.keys()) {
    if (done.has(start)) continue;
    const path: string[] = [];
    const onPath = new Set<string>();
    const stack: { name: string; next: number }[] = [{ name: start, next: 0 }];
    path.push(start);
    onPath.add(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { name: string; next: number };
      const dependencies = graph.get(top.name) ?? [];
      const dependency = dependencies[top.next];
      top.next += 1;
      if (dependency === undefined) {
        stack.pop();
        path.pop();
        onPath.delete(top.name);
        done.add(top.name);
        continue;
      }
      if (!graph.has(dependency) || done.has(dependency)) continue;
      if (onPath.has(dependency)) return [...path.slice(path.indexOf(dependency)), dependency];
      stack.push({ name: dependency, next: 0 });
      path.push(dependency);
      onPath.add(dependency);
    }
  }
  return null;
}

export function describeCycle(cycle: readonly string[]): string {
  return cycle.join(' → ');
}

/**
 * How deep each app sits: 0 without dependencies (in the graph), else one more than its deepest
 * dependency. Meant for a graph without cycles (checked before); on one, the edge closing it is ignored,
 * so that nothing loops.
 */
export function depths(graph: Graph): Map<string, number> {
  const depth = new Map<string, number>();
  const visit = (root: string): void => {
    const stack: { name: string; next: number }[] = [{ name: root, next: 0 }];
    const onStack = new Set([root]);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { name: string; next: number };
      const dependencies = (graph.get(top.name) ?? []).filter((name) => graph.has(name));
      const dependency = dependencies[top.next];
      top.next += 1;
      if (dependency !== undefined) {
        if (!depth.has(dependency) && !onStack.has(dependency)) {
          stack.push({ name: dependency, next: 0 });
          onStack.add(dependency);
        }
        continue;
      }
      stack.pop();
      onStack.delete(top.name);
      depth.set(top.name, dependencies.reduce((deepest, name) => Math.max(deepest, (depth.get(name) ?? -1) + 1), 0));
    }
  };
  for (const name of graph.keys()) if (!depth.has(name)) visit(name);
  return depth;
}

/**
 * The items in start order: every app after its dependencies, otherwise in the order given (a config
 * without `dependsOn` keeps its order).
 */
export function startOrder<T extends { name: string }>(items: readonly T[], graph: Graph): T[] {
  const depth = depths(graph);
  return items
    .map((item, index) => ({ item, index, depth: depth.get(item.name) ?? 0 }))
    .sort((a, b) => a.depth - b.depth || a.index - b.index)
    .map(({ item }) => item);
}

/**
 * The items in stop waves: dependents before what they depend on (also through apps not being stopped:
 * a → b → c stops a before c). Items in one wave do not depend on each other and stop in parallel.
 */
export function stopWaves<T extends { name: string }>(items: readonly T[], graph: Graph): T[][] {
  const depth = depths(graph);
  const waves = new Map<number, T[]>();
  for (const item of items) {
    const level = depth.get(item.name) ?? 0;
    waves.set(level, [...(waves.get(level) ?? []), item]);
  }
  return [...waves.entries()].sort(([a], [b]) => b - a).map(([, wave]) => wave);
}

/** The names and, transitively, everything they depend on, in the graph's order. */
export function withDependencies(names: readonly string[], graph: Graph): string[] {
  const wanted = new Set<string>();
  const queue = [...names];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (wanted.has(name)) continue;
    wanted.add(name);
    queue.push(...(graph.get(name) ?? []));
  }
  return [...graph.keys()].filter((name) => wanted.has(name));
}

/** Apps of the graph that depend on one of these names directly, and are not among them. */
export function dependentsOf(names: readonly string[], graph: Graph): { app: string; on: string[] }[] {
  const leaving = new Set(names);
  const found: { app: string; on: string[] }[] = [];
  for (const [app, dependencies] of graph) {
    if (leaving.has(app)) continue;
    const on = dependencies.filter((name) => leaving.has(name));
    if (on.length > 0) found.push({ app, on });
  }
  return found;
}
