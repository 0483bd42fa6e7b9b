/**
 * The conversations model calls were given, kept per workflow execution in
 * the worker, so a run's model calls can pass only their new messages
 * (ModelCallInput.known): what a run sends to Temporal per step then stays
 * flat as the run grows, instead of carrying the whole conversation every
 * time. On a miss (another worker ran the earlier calls, the worker
 * restarted, a continue-as-new started a new execution) the activity asks the
 * workflow, whose history holds every message (conversationQuery). Least
 * recently used conversations go first once the cache holds `maxBytes`.
 */
import type { ChatMessage } from '../contract/wire';

interface Entry {
  messages: ChatMessage[];
  bytes: number;
}

export class ConversationCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** The first `count` messages of the execution's conversation, if cached. */
  prefix(execution: string, count: number): ChatMessage[] | undefined {
    const entry = this.entries.get(execution);
    if (!entry || entry.messages.length < count) return undefined;
    this.entries.delete(execution); // most recently used last
    this.entries.set(execution, entry);
    return entry.messages.slice(0, count);
  }

  /** Remembers the whole conversation a model call of the execution was given. */
  remember(execution: string, messages: ChatMessage[]): void {
    this.forget(execution);
    const entry = { messages, bytes: messages.reduce((n, m) => n + JSON.stringify(m).length, 0) };
    if (entry.bytes > this.maxBytes) return;
    this.entries.set(execution, entry);
    this.bytes += entry.bytes;
    for (const [key, oldest] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(key);
      this.bytes -= oldest.bytes;
    }
  }

  private forget(execution: string): void {
    const entry = this.entries.get(execution);
    if (!entry) return;
    this.entries.delete(execution);
    this.bytes -= entry.bytes;
  }
}
