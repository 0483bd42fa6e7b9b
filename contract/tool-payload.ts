/**
 * What a tool call hands the model, and the one path from an error to the
 * text the model reads. Pure: the workflow uses it too.
 *
 * A tool answers in one of two formats (docs/api.md#a5-the-event-stream):
 * plain text (dyno_run_command, the database tools), or the JSON of an MCP
 * `CallToolResult` (code_exec_*, html_to_markdown, pdf_to_markdown, MCP
 * tools), where a failure is an `isError: true` result.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export type PayloadFormat = 'text' | 'call-tool-result';

/** A `CallToolResult` with one text item, as JSON. */
export function callToolResult(text: string, isError = false): string {
  const result: CallToolResult = { content: [{ type: 'text', text }], isError };
  return JSON.stringify(result);
}

/**
 * The payload for a failure the model should read. Refusals before a tool
 * runs (unknown tool, max_calls, invalid arguments) and outcomes the tool
 * never reported are plain text; failures inside a tool take its format.
 */
export function errorPayload(message: string, format: PayloadFormat = 'text'): string {
  return format === 'call-tool-result' ? callToolResult(message, true) : `Error: ${message}`;
}
