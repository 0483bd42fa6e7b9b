/**
 * Server-sent event framing, byte for byte as Heroku writes it (no space after
 * the colon), plus our `id:` offsets (docs/api.md#a5-the-event-stream).
 */
import type { Response } from 'express';
import type { CompletionEvent, ErrorBody } from '../contract/wire';

export function openEventStream(res: Response, runId: string): void {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('Agent-Run-Id', runId);
  res.flushHeaders();
  res.socket?.setNoDelay(true);
}

export const messageFrame = (offset: number, event: CompletionEvent) => `id:${offset}\nevent:message\ndata:${JSON.stringify(event)}\n\n`;
export const errorFrame = (error: ErrorBody['error']) => `event:error\ndata:${JSON.stringify({ error })}\n\n`;
export const DONE_FRAME = 'event:done\ndata:[DONE]\n\n';
export const KEEP_ALIVE_FRAME = ':keep-alive\n\n';
