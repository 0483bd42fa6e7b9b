/**
 * Background runs (docs/api.md#b4-background-runs-and-webhooks): with
 * `Prefer: respond-async` or `"background": true` the POST answers 202 at
 * once with where to follow the run, instead of its stream.
 */
import type { Request } from 'express';

/** RFC 7240: `Prefer: respond-async`, alone or among other preferences. */
export function prefersAsync(req: Request): boolean {
  return (req.get('Prefer') ?? '').split(',').some((p) => p.split(';')[0]?.trim().toLowerCase() === 'respond-async');
}

const statusPath = (runId: string) => `/v1/agents/runs/${runId}`;

export function backgroundHeaders(runId: string): Record<string, string> {
  return { Location: statusPath(runId), 'Agent-Run-Id': runId, 'Preference-Applied': 'respond-async' };
}

export interface BackgroundAnswer {
  id: string;
  status: 'running';
  urls: { status: string; stream: string; cancel: string };
}

export function backgroundAnswer(runId: string): BackgroundAnswer {
  return {
    id: runId,
    status: 'running',
    urls: { status: statusPath(runId), stream: `${statusPath(runId)}/stream`, cancel: `${statusPath(runId)}/cancel` },
  };
}
