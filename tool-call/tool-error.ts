import { AppError } from '../common/errors';

/**
 * A failure of a tool call that the model should read: not retried, not a
 * run failure. The tool activity turns it into the tool's error payload
 * (contract/tool-payload.ts), the one place where that happens.
 */
export class ToolError extends AppError {}
