/**
 * The payload of tools Heroku answers with an MCP `CallToolResult` (spec A5:
 * html_to_markdown, pdf_to_markdown, code_exec_*): its JSON, one text item.
 * Failures the model should read are `isError: true` results, not thrown.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

export function callToolResult(text: string, isError = false): string {
  const result: CallToolResult = { content: [{ type: 'text', text }], isError };
  return JSON.stringify(result);
}
