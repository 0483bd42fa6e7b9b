/**
 * html_to_markdown and pdf_to_markdown: the model passes a `url`; the answer
 * is a CallToolResult with the page or the PDF's text as Markdown. How they
 * fetch and convert: runners/web-tool.ts.
 */
import { noToolParams } from './no-tool-params';
import type { ToolSpec } from './tool-spec';

function webToolSpec(name: string, description: string, urlDescription: string): ToolSpec<Record<string, never>> {
  return {
    name,
    sideEffect: 'read-only',
    requiresApp: false,
    payload: 'call-tool-result',
    toolParams: noToolParams,
    modelFunction: (_params, hint) => ({
      description: hint ?? description,
      parameters: {
        type: 'object',
        properties: { url: { type: 'string', description: urlDescription } },
        required: ['url'],
      },
    }),
  };
}

export const htmlToMarkdown = webToolSpec(
  'html_to_markdown',
  'Fetches a web page and returns its content as Markdown.',
  'The http or https URL of the page',
);

export const pdfToMarkdown = webToolSpec(
  'pdf_to_markdown',
  'Fetches a PDF document and returns its text as Markdown, with a "# Page N" heading per page.',
  'The http or https URL of the PDF',
);
