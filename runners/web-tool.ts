/**
 * What html_to_markdown and pdf_to_markdown share: the guarded fetch, the
 * ttl_seconds deadline and the output cap. Every failure the model should
 * read is a ToolError (a FetchError is one), which reaches it as an `isError`
 * CallToolResult.
 */
import type { ToolSpec } from '../catalog/tool-spec';
import { callToolResult } from '../contract/tool-payload';
import type { AllowEntry } from '../common/host-list';
import { safeFetch, type FetchedResource, type SafeFetchOptions } from '../runtimes/web/safe-fetch';
import { ToolError } from '../tool-call/tool-error';
import { runner } from './runner';

/** Markdown beyond this many characters is cut, with a note saying so. */
const MAX_MARKDOWN_CHARS = 64 * 1024;

export interface WebConversion extends Pick<SafeFetchOptions, 'maxBytes' | 'maxBytesSetting' | 'accept' | 'contentTypeProblem'> {
  /** The resource as Markdown; throws FetchError for content it cannot convert. */
  toMarkdown(resource: FetchedResource, signal: AbortSignal): Promise<string>;
}

export const webToolRunner = (spec: ToolSpec<Record<string, never>>, conversion: WebConversion, allowHosts: AllowEntry[]) =>
  runner(spec, async (ctx, _params, args) => {
    const url = args.url as string;
    const ttl = ctx.runtime.ttl_seconds;
    const deadline = AbortSignal.timeout(ttl * 1000);
    const signal = AbortSignal.any([ctx.signal, deadline]);
    try {
      const resource = await safeFetch(url, {
        allowHosts,
        signal,
        maxBytes: conversion.maxBytes,
        maxBytesSetting: conversion.maxBytesSetting,
        accept: conversion.accept,
        contentTypeProblem: conversion.contentTypeProblem,
      });
      return callToolResult(capped(await conversion.toMarkdown(resource, signal)));
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason; // the run was cancelled: not the model's business
      if (deadline.aborted) throw new ToolError(`${spec.name} timed out after ${ttl}s (its ttl_seconds) on ${url}`, { cause: err });
      throw err;
    }
  });

function capped(markdown: string): string {
  if (markdown.length <= MAX_MARKDOWN_CHARS) return markdown;
  return `${markdown.slice(0, MAX_MARKDOWN_CHARS)}\n\n[truncated: the Markdown is ${markdown.length} characters; only the first ${MAX_MARKDOWN_CHARS} are shown]`;
}
