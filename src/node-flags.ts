/**
 * Node flags for agentpm's resident processes: the daemon and the log relay, which run for weeks.
 *
 * A young generation of 1 MB semi-spaces instead of V8's default (up to 16 MB each, and new space
 * keeps up to three of them): the daemon's tick allocates a little for every process of the machine
 * and keeps almost none of it, so a large nursery is only resident memory that grows with the
 * machine's process count. Measured (bench/footprint.ts; see the README's benchmark table) as the
 * largest cut in the daemon's RSS under load, for no CPU worth counting at a 1 s tick.
 */
export const RESIDENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
