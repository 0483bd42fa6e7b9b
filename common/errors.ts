/**
 * The base of every error class of the project: its `name` is the class's
 * name (so logs and tests tell them apart) and it carries the error it was
 * made from as `cause`.
 */
export class AppError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A setting (an environment variable) has a value the process cannot use; it names the variable. */
export class ConfigError extends AppError {}
