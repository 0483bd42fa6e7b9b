/**
 * Tool names as the model sees them. OpenAI-compatible APIs accept function
 * names matching ^[a-zA-Z0-9_-]{1,64}$ only, while an MCP tool is
 * `<namespace>/<tool>` everywhere the client looks (the request, the events,
 * the tool messages). So the model call gives each tool a valid name on the
 * way out and maps the model's calls back on the way in; the model-facing
 * names never leave the model call, so workflow history keeps the client's.
 */
import type { FunctionDefinition } from '../contract/run-contract';
import type { AssistantMessage, ChatMessage, ToolCall } from '../contract/wire';

const VALID_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_LENGTH = 64;

/** `notes/echo` → `notes__echo`; any other character outside the pattern → `_`; at most 64 characters. */
function sanitize(name: string): string {
  const safe = name
    .replace(/\//g, '__')
    .replace(/[^a-zA-Z0-9_-]/g, '_')
    .slice(0, MAX_LENGTH);
  return safe || 'tool';
}

export class ModelToolNames {
  private readonly toModelName = new Map<string, string>();
  private readonly fromModelName = new Map<string, string>();

  /** `names`: the run's tools, in the request's order (the mapping depends only on them, so every attempt gets the same). */
  constructor(names: readonly string[]) {
    // Valid names keep themselves; the others take the next free sanitized name.
    for (const name of names) if (VALID_NAME.test(name)) this.add(name, name);
    for (const name of names) {
      if (this.toModelName.has(name)) continue;
      const base = sanitize(name);
      let candidate = base;
      for (let n = 2; this.fromModelName.has(candidate); n++) {
        const suffix = `_${n}`;
        candidate = base.slice(0, MAX_LENGTH - suffix.length) + suffix;
      }
      this.add(name, candidate);
    }
  }

  private add(name: string, modelName: string): void {
    this.toModelName.set(name, modelName);
    this.fromModelName.set(modelName, name);
  }

  /** The name the model sees; names of no tool (earlier turns of the client's conversation) are only made valid. */
  toModel(name: string): string {
    return this.toModelName.get(name) ?? (VALID_NAME.test(name) ? name : sanitize(name));
  }

  /** The tool the model means; a name that is none of them is passed on as it is (the run reports an unknown tool). */
  fromModel(name: string): string {
    return this.fromModelName.get(name) ?? name;
  }

  functions(functions: readonly FunctionDefinition[]): FunctionDefinition[] {
    return functions.map((f) => ({ ...f, name: this.toModel(f.name) }));
  }

  /** The conversation with every tool name as the model knows it. */
  conversation(messages: readonly ChatMessage[]): ChatMessage[] {
    return messages.map((m) => {
      if (m.role === 'assistant' && m.tool_calls) return { ...m, tool_calls: this.calls(m.tool_calls, (n) => this.toModel(n)) };
      if (m.role === 'tool' && m.name !== undefined) return { ...m, name: this.toModel(m.name) };
      return m;
    });
  }

  /** The model's answer with its tool calls named as the client knows them. */
  answer(message: AssistantMessage): AssistantMessage {
    return message.tool_calls ? { ...message, tool_calls: this.calls(message.tool_calls, (n) => this.fromModel(n)) } : message;
  }

  private calls(calls: readonly ToolCall[], rename: (name: string) => string): ToolCall[] {
    return calls.map((c) => ({ ...c, function: { ...c.function, name: rename(c.function.name) } }));
  }
}
