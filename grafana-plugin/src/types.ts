import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/**
 * What a query asks Velo for: a noisy SQL release, the project's privacy budget, or the
 * public domain of a column (the options of a dashboard variable; free).
 */
export type VeloQueryType = 'sql' | 'budget' | 'domain';

/**
 * Where an SQL query runs: the data (charged) or the dataset's dummy twin (made-up people
 * generated from the public catalog: exact answers, free, never the data's).
 */
export type VeloTarget = 'data' | 'dummy';

/** How the backend shapes the release into frames. */
export type VeloFormat = 'time_series' | 'table';

/**
 * A panel query. The backend reads these fields by their JSON names; an empty project,
 * epsilon or delta leaves the choice to the data source or the project's defaults.
 */
export interface VeloQuery extends DataQuery {
  queryType?: VeloQueryType;
  sql?: string;
  project?: string;
  epsilon?: number;
  delta?: number;
  format?: VeloFormat;
  /**
   * Where the query editor's preview (panel editor, Explore) runs an SQL query: on dummy
   * data (the default: free) or on the data. Dashboards and alerts always run on the data.
   */
  preview?: VeloTarget;
  /** Set by the data source for each run (withPreviewTarget), never stored by the editor. */
  target?: VeloTarget;
  /** The column of a domain query. */
  table?: string;
  column?: string;
}

export const DEFAULT_QUERY: Partial<VeloQuery> = {
  queryType: 'sql',
  format: 'table',
  sql: '',
};

/** The data source's jsonData. */
export interface VeloOptions extends DataSourceJsonData {
  url?: string;
  defaultProject?: string;
  /** IANA zone in which the panel's range becomes calendar dates; the backend defaults to Europe/Rome. */
  timezone?: string;
  /** The language of Velo's error messages in panels: it or en (the backend sends it as Accept-Language). */
  language?: string;
}

/** Stored encrypted by Grafana and only ever sent to the backend. */
export interface VeloSecureJsonData {
  token?: string;
}
