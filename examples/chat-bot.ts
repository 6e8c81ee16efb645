/**
 * A chat bot that runs one agent per conversation through agentpm's API (see the README, "From a
 * program"): each agent is an app of its own, with its own limits and its own tree, and a replaced or
 * evicted conversation's agent is deleted whole, so its processes can never be forgotten.
 */
import { connect } from 'agentpm';

const pm = await connect(); // AGENTPM_HOME or ~/.agentpm; starts the daemon if needed
const appOf = (conversation: string): string => `agent-${conversation}`;

export async function beginConversation(conversation: string, prompt: string): Promise<void> {
  await pm.start(
    { name: appOf(conversation), script: 'claude', args: ['-p', prompt], maxMemory: '2G', maxChildren: 40, autorestart: false },
    { ifRunning: 'replace' }, // a replaced conversation's tree is stopped whole first
  );
}

export async function endConversation(conversation: string): Promise<void> {
  await pm.delete(appOf(conversation)); // TERM, grace, KILL: every process of the tree
}

export const unsubscribe = await pm.subscribe((event) => console.log(event.at, event.app, event.type, event.reason));
