/**
 * What html_to_markdown and pdf_to_markdown share: the `url` argument, the
 * guarded fetch, the ttl_seconds deadline, the output cap, and answering with
 * a CallToolResult whose `isError` carries every failure the model should read.
 */
import { heartbeatWhile } from '../heartbeat';
import { FetchError, safeFetch, type FetchedResource } from '../web/safe-fetch';
import { callToolResult } from './call-tool-result';
import { noToolParams } from './no-tool-params';
import type { Tool } from './tool';

/** Markdown beyond this many characters is cut, with a note saying so. */
const MAX_MARKDOWN_CHARS = 64 * 1024;

export interface WebToolSpec {
  name: string;
  /** What the model is told the tool does, unless the request gives a description. */
  description: string;
  urlDescription: string;
  maxBytes: number;
  accept: string;
  /** Why a response of this media type ('' when absent) cannot be converted, e.g. "is image/png, not a PDF"; undefined when it can. */
  contentTypeProblem(mediaType: string): string | undefined;
  /** The resource as Markdown; throws FetchError for content it cannot convert. */
  toMarkdown(resource: FetchedResource, signal: AbortSignal): Promise<string>;
}

export function webTool(spec: WebToolSpec): Tool<Record<string, never>> {
  return {
    name: spec.name,
    sideEffect: 'read-only',
    requiresApp: false,
    toolParams: noToolParams,
    modelFunction: (_params, description) => ({
      description: description ?? spec.description,
      parameters: {
        type: 'object',
        properties: { url: { type: 'string', description: spec.urlDescription } },
        required: ['url'],
      },
    }),
    async run(ctx, _params, args) {
      const url = args.url as string;
      const ttl = ctx.runtime.ttl_seconds;
      const deadline = AbortSignal.timeout(ttl * 1000);
      const signal = AbortSignal.any([ctx.signal, deadline]);
      const work = async () => {
        const resource = await safeFetch(url, {
          allowHosts: ctx.config.fetchAllowHosts,
          signal,
          maxBytes: spec.maxBytes,
          accept: spec.accept,
          contentTypeProblem: spec.contentTypeProblem,
        });
        return capped(await spec.toMarkdown(resource, signal));
      };
      try {
        return callToolResult(await heartbeatWhile(work()));
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason; // the run was cancelled: not the model's business
        if (deadline.aborted) return callToolResult(`${spec.name} timed out after ${ttl}s (its ttl_seconds) on ${url}`, true);
        if (err instanceof FetchError) return callToolResult(err.message, true);
        throw err;
      }
    },
  };
}

function capped(markdown: string): string {
  if (markdown.length <= MAX_MARKDOWN_CHARS) return markdown;
  return `${markdown.slice(0, MAX_MARKDOWN_CHARS)}\n\n[truncated: the Markdown is ${markdown.length} characters; only the first ${MAX_MARKDOWN_CHARS} are shown]`;
}
