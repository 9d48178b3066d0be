/**
 * The one door to PostgreSQL: a pool per database, parameterized queries, and
 * transactions on one checked-out client that roll back on error and always release.
 */
import pg from 'pg';
import { redactUrl } from '../logging';

export type Row = Record<string, unknown>;

export interface Database {
  /** Which database this is, safe to log (password redacted). */
  readonly label: string;
  /** `prepared`: as Transaction's. */
  query<R extends Row = Row>(sql: string, params?: unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>>;
  /** Runs `work` in one transaction; commits if it resolves, rolls back if it throws. */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface Transaction {
  /**
   * `prepared`: a name for the statement, under which each connection parses and plans it
   * once and then only executes it. For a fixed statement on a hot path, where planning
   * would cost as much as running it; the name must always go with the same text.
   */
  query<R extends Row = Row>(sql: string, params?: unknown[], options?: QueryOptions): Promise<pg.QueryResult<R>>;
}

export interface QueryOptions {
  prepared?: string;
}

/** A query as node-postgres takes it: a named one is parsed and planned once per connection. */
const statement = (sql: string, params: unknown[] | undefined, options: QueryOptions | undefined) =>
  options?.prepared === undefined ? { text: sql, values: params } : { name: options.prepared, text: sql, values: params };

export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  constructor(
    readonly database: string,
    message: string,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(`${database}: ${message}`, options);
  }
}

/** PostgreSQL's own errors as DatabaseError (naming the database); any other error as it is. */
export function asDatabaseError(label: string, err: unknown): unknown {
  if (!(err instanceof pg.DatabaseError)) return err;
  return new DatabaseError(label, err.message, err.code, { cause: err });
}

export function openDatabase(connectionString: string, options: { max?: number; applicationName?: string } = {}): Database {
  const label = redactUrl(connectionString);
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 5,
    application_name: options.applicationName ?? 'lessonplan',
    connectionTimeoutMillis: 10_000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);

  const wrap = (err: unknown): DatabaseError => {
    const e = err as { message?: string; code?: string };
    return new DatabaseError(label, e.message ?? String(err), e.code, { cause: err });
  };

  return {
    label,
    async query(sql, params, options) {
      try {
        return await pool.query(statement(sql, params, options));
      } catch (err) {
        throw wrap(err);
      }
    },
    async transaction(work) {
      const client = await pool.connect().catch((err) => {
        throw wrap(err);
      });
      try {
        await client.query('BEGIN');
        const result = await work({
          query: (sql, params, options) => client.query(statement(sql, params, options)),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        // Errors of the caller's own (validation, non-retryable failures) pass through unchanged.
        throw asDatabaseError(label, err);
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
