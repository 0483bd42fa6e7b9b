/**
 * How the command-line client shows runs in a terminal: plain lines, one per
 * model reply, tool call and tool result, so they read well and also survive
 * a pipe into a file.
 */
import type { RunView } from '../api/runs';
import type { CompletionEvent, ErrorBody, Usage } from '../contract/wire';

const TOOL_RESULT = /^Tool '(.*?)' returned result: /s;
/** Tool results longer than this are cut in the terminal (`--json` prints them whole). */
const MAX_RESULT_CHARS = 2_000;

const indent = (text: string, prefix: string) => text.replace(/\n/g, `\n${prefix}`);

export function renderEvent(event: CompletionEvent): string {
  if (event.object === 'approval.request') {
    return `  ?? ${event.name} ${event.arguments} waits for approval (tool call ${event.tool_call_id}, until ${time(event.expires_at)})`;
  }
  const [choice] = event.choices;
  if (event.object === 'chat.completion') {
    const { message } = event.choices[0];
    const lines: string[] = [];
    if (message.content) lines.push(`assistant: ${indent(message.content, '  ')}`);
    if (message.refusal) lines.push(`assistant refused: ${indent(message.refusal, '  ')}`);
    for (const call of message.tool_calls ?? []) lines.push(`  -> ${call.function.name} ${call.function.arguments}`);
    if (lines.length === 0) lines.push(`assistant: (no content, finish_reason ${choice.finish_reason || 'none'})`);
    return lines.join('\n');
  }
  const { message } = event.choices[0];
  const payload = message.content.replace(TOOL_RESULT, '');
  const shown = payload.length > MAX_RESULT_CHARS ? `${payload.slice(0, MAX_RESULT_CHARS)}… (${payload.length} characters)` : payload;
  return `  <- ${message.name}: ${indent(shown, '     ')}`;
}

export const renderError = (error: ErrorBody['error']) => `error: ${error.message} (${error.type}, ${error.code})`;

export const renderUsage = (usage: Usage) => `${usage.total_tokens} tokens (${usage.prompt_tokens} prompt, ${usage.completion_tokens} completion)`;

const time = (seconds: number) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

export function renderRun(run: RunView): string {
  const tools = Object.entries(run.tool_calls);
  return [
    `run        ${run.id}`,
    `workflow   ${run.workflow_id}`,
    `status     ${run.status}`,
    `model      ${run.model}`,
    `created    ${time(run.created)}`,
    `usage      ${renderUsage(run.usage)}`,
    `model calls ${run.model_calls}`,
    `tool calls ${tools.length ? tools.map(([name, n]) => `${name} ×${n}`).join(', ') : 'none'}`,
    `events     ${run.events}`,
    ...(run.error ? [`error      ${run.error.message} (${run.error.type}, ${run.error.code})`] : []),
  ].join('\n');
}

export function renderRunList(runs: Pick<RunView, 'id' | 'status' | 'model' | 'created'>[]): string {
  if (runs.length === 0) return 'no runs';
  const rows = [['RUN', 'STATUS', 'MODEL', 'CREATED'], ...runs.map((r) => [r.id, r.status, r.model, time(r.created)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ')).join('\n');
}
