/**
 * Which database `db_attachment: X` means: the worker's X_URL, but only when
 * it holds a postgres:// or postgresql:// URL and, if POSTGRES_ATTACHMENTS is
 * set, X is on that list. So INFERENCE_URL, REDIS_URL and other URLs of the
 * worker are never databases, and their values never leave the worker.
 */
import { attachmentVariable, type PostgresSettings } from '../../common/config';
import { ToolError } from '../../tool-call/tool-error';

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** The URL of the database attached as `attachment`; a ToolError saying why when there is none the tools may use. */
export function attachmentUrl(settings: Pick<PostgresSettings, 'attachments' | 'databaseUrl'>, attachment: string): string {
  const variable = attachmentVariable(attachment);
  const { attachments } = settings;
  if (attachments && !attachments.includes(attachment)) {
    throw new ToolError(
      `${attachment} is not a database attachment the tools may use on this worker: POSTGRES_ATTACHMENTS allows ${attachments.join(', ') || 'none'}`,
    );
  }
  const url = settings.databaseUrl(attachment);
  if (url === undefined) {
    const hint = attachment.endsWith('_URL')
      ? ` (db_attachment names the attachment without _URL: '${attachment.slice(0, -4)}' reads ${attachment})`
      : '';
    throw new ToolError(`no database is attached as ${attachment}: the worker has no ${variable} environment variable${hint}`);
  }
  if (!POSTGRES_URL.test(url)) {
    throw new ToolError(
      `${attachment} is not a database attachment: ${variable} does not hold a postgres:// or postgresql:// URL, and the database tools use no other variables (POSTGRES_ATTACHMENTS lists those they may use)`,
    );
  }
  return url;
}
